// Batch jobs: the list (operation, query, state, progress, start) and one
// job's detail (a progress bar, the failures with their reasons, Stop with
// confirmation). Both refresh every second while a job they show runs.

import { call, enc, qs } from "../api.js";
import { openDialog } from "../dialogs.js";
import { badge, fact, h, json, mount, notify, remount, table, time } from "../dom.js";
import { batchPath, link, nsPath, runPath } from "../nav.js";

/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").BatchDescription} BatchDescription */
/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").BatchList} BatchList */

const PAGE_SIZE = 50;
const REFRESH_MS = 1000;

/**
 * Makes the function that runs `load` now, and again every REFRESH_MS
 * while it answers true, until `signal` aborts (a newer load takes over
 * the schedule of an older one still on its way). Its promise fails as
 * `load` does; a failure of a later load is shown in the notice line.
 * @param {AbortSignal} signal
 * @param {() => Promise<boolean>} load
 */
function poll(signal, load) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer = undefined;
  let generation = 0;
  signal.addEventListener("abort", () => clearTimeout(timer));
  const run = async () => {
    clearTimeout(timer);
    const mine = ++generation;
    const again = await load();
    if (again && mine === generation && !signal.aborted) timer = setTimeout(() => void run().catch(report(signal)), REFRESH_MS);
  };
  return run;
}

/**
 * Shows an error in the notice line, unless the page is gone.
 * @param {AbortSignal} signal
 */
const report = (signal) => (/** @type {unknown} */ e) => {
  if (!signal.aborted) notify(e instanceof Error ? e.message : String(e), "error");
};

/**
 * Runs the operation reached (done or failed), of the total it counted at the start.
 * @param {BatchDescription} b
 */
const reached = (b) => b.done + b.failed;

/**
 * What a job does, in words.
 * @param {BatchDescription} b
 */
function operation(b) {
  if (b.operation === "signal") return `signal ${b.signal_name ?? ""}`;
  if (b.operation === "reset") return `reset to ${b.reset_type === "LAST_WORKFLOW_TASK" ? "the last" : "the first"} workflow task`;
  return b.operation;
}

/**
 * A job's progress: a bar, and how many runs of the total it reached.
 * @param {BatchDescription} b
 */
function progress(b) {
  const closed = b.state !== "RUNNING";
  const bar = h("progress", {
    max: Math.max(b.total, 1),
    value: b.total ? reached(b) : closed ? 1 : 0,
    "aria-label": `${reached(b)} of ${b.total} runs`,
  });
  return h(
    "span",
    { class: "progress" },
    bar,
    h("span", { class: "num", "data-reached": reached(b), "data-total": b.total }, `${reached(b)} / ${b.total}`),
    b.failed ? h("span", { class: "error" }, `${b.failed} failed`) : null,
  );
}

/** @param {import("../nav.js").PageContext} ctx */
export async function batchesPage(ctx) {
  const { root, ns, signal } = ctx;
  const body = h("div", { class: "list" });
  const prev = h("button", { type: "button", "data-focus": "prev" }, "← Previous");
  const next = h("button", { type: "button", "data-focus": "next" }, "Next →");
  const where = h("span", { class: "muted" });
  mount(
    root,
    h("div", { class: "title" }, h("h1", {}, "Batch jobs")),
    h(
      "p",
      { class: "muted" },
      "Operations over many runs at once, newest first. Start one from the ",
      link(`${nsPath(ns)}/workflows`, "workflows list"),
      " (select runs, or act on every running run a filter matches) or through the API.",
    ),
    body,
    h("div", { class: "pager" }, prev, where, next),
  );
  /** @type {string[]} page tokens of the pages before this one */
  const tokens = [];
  /** @type {string | undefined} */
  let token = undefined;
  /** @type {string | undefined} */
  let nextToken = undefined;

  const reload = poll(signal, async () => {
    /** @type {BatchList} */
    const list = await call("GET", `/namespaces/${enc(ns)}/batches${qs({ page_size: PAGE_SIZE, next_page_token: token })}`);
    const rows = list.batches.map((b) =>
      h(
        "tr",
        { "data-batch-id": b.batch_id },
        h("td", {}, link(batchPath(ns, b.batch_id), b.batch_id, { "data-focus": b.batch_id })),
        h("td", {}, operation(b)),
        h("td", { class: "query" }, b.query),
        h("td", {}, badge(b.state)),
        h("td", {}, progress(b)),
        h("td", {}, time(b.created_at)),
        h("td", {}, time(b.closed_at)),
      ),
    );
    remount(
      body,
      rows.length
        ? table(["Batch ID", "Operation", "Query", "State", "Progress", "Started", "Closed"], rows, { class: "batches", "aria-label": "Batch jobs" })
        : h("p", { class: "muted empty" }, "No batch jobs yet."),
    );
    nextToken = list.next_page_token;
    prev.disabled = tokens.length === 0;
    next.disabled = !nextToken;
    where.textContent = `page ${tokens.length + 1}`;
    return list.batches.some((b) => b.state === "RUNNING");
  });
  prev.addEventListener("click", () => {
    token = tokens.pop() || undefined;
    void reload().catch(report(signal));
  });
  next.addEventListener("click", () => {
    tokens.push(token ?? "");
    token = nextToken;
    void reload().catch(report(signal));
  });
  await reload();
}

/** @param {import("../nav.js").PageContext} ctx */
export async function batchPage(ctx) {
  const { root, ns, signal } = ctx;
  const id = ctx.params[0] ?? "";
  const path = `/namespaces/${enc(ns)}/batches/${enc(id)}`;
  const state = h("span");
  const stop = h("button", { type: "button", class: "danger", hidden: true, onclick: () => void stopDialog() }, "Stop…");
  const facts = h("div");
  const bar = h("progress", { id: "batch-progress", "aria-label": "Progress", max: 1, value: 0 });
  const counts = h("p", { id: "batch-counts" });
  const failures = h("div", { id: "batch-failures" });
  /** What the facts and failures were drawn from: they are drawn again only when it changes. */
  let drawn = "";

  const reload = poll(signal, async () => {
    /** @type {BatchDescription} */
    const b = await call("GET", path);
    // Drawn once the job is found (a missing one is only the error).
    if (!root.contains(bar)) {
      mount(
        root,
        h("p", {}, link(`${nsPath(ns)}/batches`, "← Batch jobs")),
        h("div", { class: "title" }, h("h1", {}, "Batch job ", h("span", { class: "mono" }, id), state), h("div", { class: "actions" }, stop)),
        facts,
        h("h2", {}, "Progress"),
        h("div", { class: "progress wide" }, bar),
        counts,
        h("h2", {}, "Failures"),
        failures,
      );
    }
    mount(state, badge(b.state));
    const running = b.state === "RUNNING";
    stop.hidden = !running;
    stop.disabled = b.stop_requested;
    stop.textContent = b.stop_requested ? "Stopping…" : "Stop…";
    bar.max = Math.max(b.total, 1);
    bar.value = b.total ? reached(b) : running ? 0 : 1;
    const pct = b.total ? Math.floor((100 * reached(b)) / b.total) : 100;
    counts.textContent = `${reached(b)} of ${b.total} runs reached (${pct}%): ${b.done} done, ${b.failed} failed.`;
    counts.setAttribute("data-reached", String(reached(b)));
    const key = JSON.stringify([b.state, b.stop_requested, b.closed_at, b.failures.length, b.failed]);
    if (key !== drawn) {
      drawn = key;
      drawFacts(b);
      drawFailures(b);
    }
    return running;
  });

  /** @param {BatchDescription} b */
  function drawFacts(b) {
    remount(
      facts,
      h(
        "table",
        { class: "facts", "aria-label": "Batch job" },
        h(
          "tbody",
          {},
          fact("Operation", operation(b)),
          b.operation === "signal" ? fact("Signal input", json(b.input)) : null,
          fact("Query", h("code", { class: "query" }, b.query), " ", link(`${nsPath(ns)}/workflows${qs({ q: b.query })}`, "matching runs", { "data-focus": "runs" })),
          fact("Reason", b.reason || h("span", { class: "muted" }, "—")),
          fact("Identity", b.identity ?? h("span", { class: "muted" }, "—")),
          fact("Rate", `${b.rps} run${b.rps === 1 ? "" : "s"} per second`),
          fact("Started", time(b.created_at)),
          fact("Closed", time(b.closed_at)),
          b.stop_requested ? fact("Stop", "requested") : null,
        ),
      ),
    );
  }

  /** @param {BatchDescription} b */
  function drawFailures(b) {
    if (!b.failures.length) {
      mount(failures, h("p", { class: "muted" }, "None."));
      return;
    }
    const rows = b.failures.map((f) =>
      h(
        "tr",
        {},
        h("td", {}, link(runPath(ns, f.workflow_id, f.run_id), f.workflow_id, { "data-focus": f.run_id })),
        h("td", { class: "mono" }, f.run_id),
        h("td", {}, f.reason),
      ),
    );
    remount(
      failures,
      table(["Workflow ID", "Run ID", "Reason"], rows, { class: "failures", "aria-label": "Failures" }),
      b.failed > b.failures.length ? h("p", { class: "muted" }, `The first ${b.failures.length} of ${b.failed} failures are kept.`) : null,
    );
  }

  async function stopDialog() {
    const ok = await openDialog({
      title: "Stop the batch job",
      text: "The job stops before its next run. Runs it reached stay as they are; the rest are left alone.",
      confirm: "Stop job",
      danger: true,
      action: async () => {
        await call("POST", `${path}/stop`);
      },
    });
    if (ok) {
      notify("Stop requested.");
      await reload().catch(report(signal));
    }
  }

  await reload();
}
