// Endpoints and versions: per task queue, its versions (which is current,
// how many open runs each still has pinned: the drain view), promote, move
// runs, delete a drained version, and the last push errors this node saw
// per endpoint.

import { call, enc, qs } from "../api.js";
import { openDialog } from "../dialogs.js";
import { h, mount, notify, table, time } from "../dom.js";
import { link, navigate, nsPath } from "../nav.js";
import { quote } from "../query.js";

/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").Endpoint} Endpoint */
/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").EndpointVersionList} EndpointVersionList */

/** @param {import("../nav.js").PageContext} ctx */
export async function endpointsPage(ctx) {
  const { root, ns } = ctx;
  /** @type {import("../../../sdk-ts/src/generated/openapi.ts").EndpointList} */
  const list = await call("GET", `/namespaces/${enc(ns)}/endpoints`);
  const queues = [...new Set(list.endpoints.map((e) => e.task_queue))].sort();
  const versions = await Promise.all(queues.map((q) => /** @type {Promise<EndpointVersionList>} */ (call("GET", `/namespaces/${enc(ns)}/endpoints/${enc(q)}/versions`))));
  const reload = () => navigate(`${nsPath(ns)}/endpoints`, { replace: true });
  mount(
    root,
    h("div", { class: "title" }, h("h1", {}, "Endpoints")),
    queues.length === 0 ? h("p", { class: "muted" }, "No endpoints are registered in this namespace.") : null,
    versions.map((v) => queueSection(ns, v, list.endpoints.filter((e) => e.task_queue === v.task_queue), reload)),
  );
}

/**
 * @param {string} ns
 * @param {EndpointVersionList} v
 * @param {Endpoint[]} endpoints
 * @param {() => void} reload
 */
function queueSection(ns, v, endpoints, reload) {
  const q = v.task_queue;
  const base = `/namespaces/${enc(ns)}/endpoints/${enc(q)}`;
  const registered = v.versions.filter((x) => x.registered).map((x) => x.version);
  const rows = v.versions.map((ver) => {
    const ep = endpoints.find((e) => e.version === ver.version);
    const runsQuery = `TaskQueue = ${quote(q)} AND BatonPinnedVersion = ${quote(ver.version)} AND ExecutionStatus = 'Running'`;
    const promote = h("button", { type: "button", disabled: ver.is_current || !ver.registered }, "Promote");
    promote.addEventListener("click", async () => {
      const ok = await openDialog({
        title: `Promote ${ver.version}`,
        text: `New runs of ${q} will be pinned to ${ver.version}; runs pinned elsewhere stay where they are.`,
        confirm: "Promote",
        action: async () => {
          await call("POST", `${base}/versions/${enc(ver.version)}/promote`);
        },
      });
      if (ok) {
        notify(`${ver.version} is now current.`);
        reload();
      }
    });
    const move = h("button", { type: "button", disabled: ver.open_runs === 0 || registered.length < 2 && ver.registered }, "Move runs…");
    move.addEventListener("click", async () => {
      const targets = registered.filter((r) => r !== ver.version);
      const ok = await openDialog({
        title: `Move open runs off ${ver.version}`,
        text: `Re-pins the open runs of ${q} on ${ver.version}; each records the move in its history.`,
        confirm: "Move runs",
        danger: true,
        fields: [
          { name: "to", label: "To version", kind: "select", options: targets },
          { name: "workflow_ids", label: "Only these workflow IDs (comma-separated, optional)" },
          { name: "reason", label: "Reason", required: true },
        ],
        action: async (values) => {
          const ids = (values.workflow_ids ?? "").split(",").map((s) => s.trim()).filter(Boolean);
          /** @type {import("../../../sdk-ts/src/generated/openapi.ts").MoveRunsRequest} */
          const body = { from_version: ver.version, reason: values.reason ?? "", identity: "baton-ui" };
          if (ids.length) body.workflow_ids = ids;
          /** @type {import("../../../sdk-ts/src/generated/openapi.ts").MovedRuns} */
          const r = await call("POST", `${base}/versions/${enc(values.to ?? "")}/move-runs`, body);
          notify(`Moved ${r.moved} run${r.moved === 1 ? "" : "s"}.`);
        },
      });
      if (ok) reload();
    });
    const del = h("button", { type: "button", class: "danger", disabled: !ver.registered || ver.is_current || ver.open_runs > 0, title: ver.open_runs > 0 ? "Open runs are still pinned to this version" : "" }, "Delete");
    del.addEventListener("click", async () => {
      const ok = await openDialog({
        title: `Delete ${q} version ${ver.version}`,
        text: "No open run is pinned to it; new runs do not use it.",
        confirm: "Delete version",
        danger: true,
        action: async () => {
          await call("DELETE", `${base}/${enc(ver.version)}`);
        },
      });
      if (ok) {
        notify(`Deleted ${ver.version}.`);
        reload();
      }
    });
    const errors = ep?.last_push_errors ?? [];
    return h(
      "tr",
      { "data-version": ver.version },
      h("td", {}, h("strong", {}, ver.version), ver.is_current ? h("span", { class: "badge s-running" }, "current") : null, ver.registered ? null : h("span", { class: "badge s-failed" }, "deleted")),
      h("td", { class: "mono" }, ver.url ?? "—"),
      h("td", { class: "num open-runs" }, ver.open_runs > 0 ? link(`${nsPath(ns)}/workflows${qs({ q: runsQuery })}`, String(ver.open_runs)) : "0"),
      h("td", {}, time(ver.created_at)),
      h(
        "td",
        { class: "push-errors" },
        errors.length
          ? h("details", {}, h("summary", { class: "error" }, `${errors.length} recent push error${errors.length === 1 ? "" : "s"}`), h("ul", {}, errors.map((e) => h("li", {}, time(e.time), " ", e.status_code ? h("strong", {}, `HTTP ${e.status_code}`) : h("strong", {}, "no answer"), ` ${e.message}`))))
          : h("span", { class: "muted" }, ep ? "none" : ""),
      ),
      h("td", { class: "buttons" }, promote, move, del),
    );
  });
  return h(
    "section",
    { class: "queue", "data-queue": q },
    h("h2", {}, q),
    table(["Version", "URL", "Open runs", "Registered", "Last push errors (this node)", ""], rows, { "aria-label": `Versions of ${q}` }),
  );
}
