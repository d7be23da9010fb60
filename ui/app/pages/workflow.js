// One run: summary, compact (grouped) history, full event table, timeline,
// pending work, queries, the history download, and the actions (signal,
// update, cancel, terminate, reset), each confirmed with a reason where the
// API records one.

import { call, enc, fullHistory, qs } from "../api.js";
import { openDialog } from "../dialogs.js";
import { badge, between, duration, fact, h, json, mount, notify, parseJson, table, time } from "../dom.js";
import { causeChain, group } from "../history.js";
import { link, navigate, runPath } from "../nav.js";
import { timeline } from "../timeline.js";

/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").WorkflowDescription} WorkflowDescription */
/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").Event} Event */
/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").Failure} Failure */

const TABS = /** @type {const} */ (["summary", "history", "events", "timeline", "pending", "query"]);

/** @param {import("../nav.js").PageContext} ctx */
export async function workflowPage(ctx) {
  const { root, ns } = ctx;
  const workflowId = ctx.params[0] ?? "";
  const runParam = ctx.query.get("run_id") ?? "";
  const tabParam = ctx.query.get("tab") ?? "summary";
  const tab = /** @type {(typeof TABS)[number]} */ (TABS.includes(/** @type {any} */ (tabParam)) ? tabParam : "summary");
  const base = `/namespaces/${enc(ns)}/workflows/${enc(workflowId)}`;
  /** @type {WorkflowDescription} */
  const desc = await call("GET", `${base}${qs({ run_id: runParam })}`);
  const runId = desc.execution.run_id;
  const history = await fullHistory(ns, workflowId, runId);
  const events = history.events;
  const open = desc.execution.status === "RUNNING";
  const reload = () => navigate(runPath(ns, workflowId, runId, tab), { replace: true });

  const tabs = h(
    "nav",
    { class: "tabs", "aria-label": "Run views" },
    TABS.map((t) =>
      link(runPath(ns, workflowId, runParam || undefined, t), t === "pending" ? `Pending (${desc.pending_activities.length + desc.pending_timers.length + desc.buffered_events.length + (desc.pending_workflow_task ? 1 : 0)})` : t[0]?.toUpperCase() + t.slice(1), {
        class: t === tab ? "active" : "",
        "aria-current": t === tab ? "page" : null,
        "data-tab": t,
      }),
    ),
  );
  const download = h("a", { class: "button", download: `${workflowId}-${runId}.json`, href: "#" }, "Download history");
  download.addEventListener("click", () => {
    const blob = new Blob([JSON.stringify({ workflow_id: workflowId, run_id: runId, events }, null, 2)], { type: "application/json" });
    download.href = URL.createObjectURL(blob);
  });
  /** @param {string} label @param {() => void} f @param {boolean} [danger] */
  const act = (label, f, danger = false) => h("button", { type: "button", class: danger ? "danger" : "", onclick: f, disabled: !open && label !== "Reset" }, label);
  const actions = h(
    "div",
    { class: "actions", role: "toolbar", "aria-label": "Actions" },
    act("Signal", () => void signalDialog(base, runId, reload)),
    act("Update", () => void updateDialog(base, runId, reload)),
    act("Cancel", () => void closeDialog("cancel", base, runId, reload), true),
    act("Terminate", () => void closeDialog("terminate", base, runId, reload), true),
    act("Reset", () => void resetDialog(ns, workflowId, base, runId, events), true),
    download,
  );
  const view = h("section", { class: "view", id: `view-${tab}` });
  mount(
    root,
    h("div", { class: "title" }, h("h1", {}, workflowId, " ", badge(desc.execution.status)), actions),
    h("p", { class: "muted mono" }, `${desc.execution.workflow_type} · run ${runId}`),
    tabs,
    view,
  );
  if (tab === "summary") summary(view, ns, desc, events);
  else if (tab === "history") compact(view, events);
  else if (tab === "events") eventTable(view, events);
  else if (tab === "timeline") timelineView(view, events, desc);
  else if (tab === "pending") pending(view, desc);
  else queryView(view, base, runId);
}

/**
 * A failure with its cause chain.
 * @param {Failure | undefined} failure
 */
function failureView(failure) {
  const chain = causeChain(failure);
  return h(
    "ol",
    { class: "causes", "aria-label": "Failure and causes" },
    chain.map((f, i) =>
      h(
        "li",
        {},
        h("strong", {}, i === 0 ? "" : "caused by ", f.type ?? f.kind ?? "Error"),
        ": ",
        f.message,
        f.activity_failure_info ? h("span", { class: "muted" }, ` (activity ${f.activity_failure_info.activity_type}, ${f.activity_failure_info.retry_state ?? ""})`) : null,
        f.non_retryable ? h("span", { class: "muted" }, " non-retryable") : null,
        f.details !== undefined ? json(f.details) : null,
        f.stack_trace ? h("details", {}, h("summary", {}, "Stack trace"), h("pre", {}, f.stack_trace)) : null,
      ),
    ),
  );
}

/**
 * @param {HTMLElement} view
 * @param {string} ns
 * @param {WorkflowDescription} desc
 * @param {Event[]} events
 */
function summary(view, ns, desc, events) {
  const e = desc.execution;
  const started = events.find((x) => x.event_type === "WorkflowExecutionStarted");
  const startedAttrs = started?.event_type === "WorkflowExecutionStarted" ? started.attributes : undefined;
  const last = events[events.length - 1];
  /** @type {HTMLElement | null} */
  let outcome = null;
  if (last?.event_type === "WorkflowExecutionCompleted") outcome = h("div", {}, h("h2", {}, "Result"), json(last.attributes.result));
  else if (last?.event_type === "WorkflowExecutionFailed") outcome = h("div", { class: "failure" }, h("h2", {}, "Failure"), failureView(last.attributes.failure));
  else if (last?.event_type === "WorkflowExecutionTerminated") outcome = h("div", { class: "failure" }, h("h2", {}, "Terminated"), h("p", {}, last.attributes.reason || "(no reason)"));
  else if (last?.event_type === "WorkflowExecutionTimedOut") outcome = h("div", { class: "failure" }, h("h2", {}, "Timed out"));
  else if (last?.event_type === "WorkflowExecutionCanceled") outcome = h("div", {}, h("h2", {}, "Canceled"));
  /** @param {string} wid @param {string | undefined} rid */
  const runLink = (wid, rid) => link(runPath(ns, wid, rid), rid ? `${wid} / ${rid}` : wid);
  const chain = [
    startedAttrs?.continued_execution_run_id ? fact("Continued from", runLink(e.workflow_id, startedAttrs.continued_execution_run_id)) : null,
    desc.first_execution_run_id !== e.run_id ? fact("First run", runLink(e.workflow_id, desc.first_execution_run_id)) : null,
    desc.new_execution_run_id ? fact("Next run", runLink(e.workflow_id, desc.new_execution_run_id)) : null,
  ];
  /** @type {Record<string, unknown>} */
  const extra = /** @type {any} */ (desc);
  const searchAttributes = extra.search_attributes;
  mount(
    view,
    h(
      "table",
      { class: "facts", "aria-label": "Summary" },
      h(
        "tbody",
        {},
        fact("Status", badge(e.status)),
        fact("Workflow type", e.workflow_type),
        fact("Task queue", e.task_queue),
        fact("Pinned version", desc.pinned_version ?? "—"),
        fact("Start", time(e.start_time)),
        fact("Close", time(e.close_time)),
        fact("Duration", duration(between(e.start_time, e.close_time))),
        fact("Attempt", desc.attempt),
        fact("History", `${e.history_length} events, ${desc.history_size_bytes} bytes`),
        desc.parent ? fact("Parent", runLink(desc.parent.workflow_id, desc.parent.run_id)) : null,
        chain,
        desc.cancel_requested ? fact("Cancel requested", "yes") : null,
      ),
    ),
    outcome,
    h("h2", {}, "Input"),
    json(startedAttrs?.input),
    desc.memo && Object.keys(desc.memo).length ? [h("h2", {}, "Memo"), json(desc.memo)] : null,
    searchAttributes && typeof searchAttributes === "object" && Object.keys(searchAttributes).length ? [h("h2", {}, "Search attributes"), json(searchAttributes)] : null,
    desc.children.length
      ? [
          h("h2", {}, "Children"),
          table(
            ["Workflow ID", "Type", "Status", "Parent close policy"],
            desc.children.map((c) => h("tr", {}, h("td", {}, link(runPath(ns, c.workflow_id, c.run_id), c.workflow_id)), h("td", {}, c.workflow_type), h("td", {}, badge(c.status)), h("td", {}, c.parent_close_policy))),
            { "aria-label": "Children" },
          ),
        ]
      : null,
  );
}

/** @param {HTMLElement} view @param {Event[]} events */
function compact(view, events) {
  const items = group(events);
  const rows = items.map((i) => {
    const d = i.end !== undefined && i.kind !== "event" ? duration(i.end - i.start) : "";
    const first = i.events[0];
    return h(
      "tr",
      { class: `k-${i.kind}`, "data-kind": i.kind },
      h("td", { class: "num" }, i.first),
      h("td", {}, first ? time(first.event_time) : ""),
      h("td", {}, i.kind === "event" ? i.name : `${i.kind === "workflow-task" ? "" : `${i.kind} `}${i.name}`),
      h("td", {}, i.kind === "event" ? "" : i.state),
      h("td", { class: "num" }, d),
      h("td", { class: "num" }, i.attempts > 1 ? `${i.attempts} attempts` : ""),
      h(
        "td",
        {},
        i.failure ? h("details", {}, h("summary", {}, i.failure.message), failureView(i.failure)) : null,
        i.detail !== undefined && i.kind !== "workflow-task" ? h("details", {}, h("summary", {}, i.kind === "event" ? "attributes" : "data"), json(i.detail)) : null,
      ),
    );
  });
  mount(view, table(["#", "Time", "What", "State", "Duration", "Attempts", "Details"], rows, { class: "history", "aria-label": "Grouped history" }));
}

/** @param {HTMLElement} view @param {Event[]} events */
function eventTable(view, events) {
  const begun = performance.now();
  const rows = events.map((e) =>
    h(
      "tr",
      {},
      h("td", { class: "num" }, e.event_id),
      h("td", {}, time(e.event_time)),
      h("td", {}, e.event_type),
      h("td", {}, h("details", {}, h("summary", { class: "mono" }, abbreviate(JSON.stringify(e.attributes))), json(e.attributes))),
    ),
  );
  mount(view, table(["ID", "Time", "Type", "Attributes"], rows, { class: "events", "aria-label": "Events" }));
  view.dataset.renderMs = String(Math.round(performance.now() - begun));
}

/** @param {string} s */
function abbreviate(s) {
  return s.length > 140 ? `${s.slice(0, 139)}…` : s;
}

/** @param {HTMLElement} view @param {Event[]} events @param {WorkflowDescription} desc */
function timelineView(view, events, desc) {
  const begun = performance.now();
  const selected = h("div", { class: "selected" });
  const now = desc.execution.close_time ? Date.parse(desc.execution.close_time) : Date.now();
  const chart = timeline(group(events), {
    now,
    onSelect: (item) =>
      mount(
        selected,
        h("h2", {}, `${item.kind} ${item.name}: ${item.state}`),
        h("p", {}, `Events ${item.events.map((e) => e.event_id).join(", ")}; ${duration((item.end ?? now) - item.start)}${item.attempts > 1 ? `; ${item.attempts} attempts` : ""}`),
        item.failure ? failureView(item.failure) : null,
        item.detail !== undefined ? json(item.detail) : null,
      ),
  });
  mount(view, chart, selected);
  view.dataset.renderMs = String(Math.round(performance.now() - begun));
}

/** @param {HTMLElement} view @param {WorkflowDescription} desc */
function pending(view, desc) {
  const wt = desc.pending_workflow_task;
  mount(
    view,
    h("h2", {}, "Workflow task"),
    wt
      ? h("p", { class: "pending-wt" }, `In flight: attempt ${wt.attempt}, scheduled `, time(wt.scheduled_time), wt.last_failure ? h("span", { class: "error" }, ` — last failure: ${wt.last_failure}`) : null)
      : h("p", { class: "muted" }, "None in flight."),
    h("h2", {}, "Buffered behind the workflow task"),
    desc.buffered_events.length
      ? table(
          ["Event", "Name", "Arrived"],
          desc.buffered_events.map((b) => h("tr", {}, h("td", {}, b.event_type), h("td", {}, b.name ?? ""), h("td", {}, time(b.time)))),
          { "aria-label": "Buffered events" },
        )
      : h("p", { class: "muted" }, "Nothing waiting."),
    h("h2", {}, "Activities"),
    desc.pending_activities.length
      ? table(
          ["Activity", "State", "Attempt", "Scheduled", "Last started", "Next retry", "Last heartbeat", "Last failure"],
          desc.pending_activities.map((a) =>
            h(
              "tr",
              {},
              h("td", {}, `${a.activity_type} (${a.activity_id})`),
              h("td", {}, a.state),
              h("td", { class: "num" }, `${a.attempt}${a.maximum_attempts ? ` of ${a.maximum_attempts}` : ""}`),
              h("td", {}, time(a.scheduled_time)),
              h("td", {}, time(a.last_started_time)),
              h("td", {}, time(a.next_attempt_schedule_time)),
              h("td", {}, time(a.last_heartbeat_time), a.heartbeat_details !== undefined ? json(a.heartbeat_details) : null),
              h("td", {}, a.last_failure ? failureView(a.last_failure) : ""),
            ),
          ),
          { "aria-label": "Pending activities" },
        )
      : h("p", { class: "muted" }, "None."),
    h("h2", {}, "Timers"),
    desc.pending_timers.length
      ? table(
          ["Timer", "Started by event", "Fires"],
          desc.pending_timers.map((t) => h("tr", {}, h("td", {}, t.timer_id), h("td", { class: "num" }, t.started_event_id), h("td", {}, time(t.fire_time)))),
          { "aria-label": "Pending timers" },
        )
      : h("p", { class: "muted" }, "None."),
  );
}

/** @param {HTMLElement} view @param {string} base @param {string} runId */
function queryView(view, base, runId) {
  const name = h("input", { id: "q-name", placeholder: "Query name", required: true });
  const args = h("textarea", { id: "q-args", rows: 3, placeholder: "Arguments (JSON), optional", spellcheck: "false" });
  const out = h("div", { id: "q-result", role: "status" });
  const form = h("form", { class: "stack" }, h("label", { for: "q-name" }, "Query"), name, h("label", { for: "q-args" }, "Arguments"), args, h("button", { type: "submit", class: "primary" }, "Run query"), out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      /** @type {import("../../../sdk-ts/src/generated/openapi.ts").QueryWorkflowRequest} */
      const body = { run_id: runId };
      const a = parseJson(args.value, "Arguments");
      if (a !== undefined) body.args = a;
      /** @type {import("../../../sdk-ts/src/generated/openapi.ts").QueryWorkflowResponse} */
      const r = await call("POST", `${base}/query/${enc(name.value.trim())}`, body);
      mount(out, h("h2", {}, "Result"), json(r.result));
    } catch (err) {
      mount(out, h("p", { class: "error" }, err instanceof Error ? err.message : String(err)));
    }
  });
  mount(view, form);
}

/** @param {string} base @param {string} runId @param {() => void} done */
async function signalDialog(base, runId, done) {
  const ok = await openDialog({
    title: "Send a signal",
    confirm: "Send signal",
    fields: [
      { name: "name", label: "Signal name", required: true },
      { name: "input", label: "Input (JSON)", kind: "json" },
    ],
    action: async (v) => {
      /** @type {import("../../../sdk-ts/src/generated/openapi.ts").SignalWorkflowRequest} */
      const body = { run_id: runId, identity: "baton-ui" };
      const input = parseJson(v.input ?? "", "Input");
      if (input !== undefined) body.input = input;
      await call("POST", `${base}/signal/${enc((v.name ?? "").trim())}`, body);
    },
  });
  if (ok) {
    notify("Signal sent.");
    done();
  }
}

/** @param {string} base @param {string} runId @param {() => void} done */
async function updateDialog(base, runId, done) {
  /** @type {unknown} */
  let result = undefined;
  const ok = await openDialog({
    title: "Send an update",
    confirm: "Send update",
    fields: [
      { name: "name", label: "Update name", required: true },
      { name: "args", label: "Arguments (JSON)", kind: "json" },
    ],
    action: async (v) => {
      /** @type {import("../../../sdk-ts/src/generated/openapi.ts").UpdateWorkflowRequest} */
      const body = { run_id: runId, identity: "baton-ui", wait_for_stage: "COMPLETED" };
      const args = parseJson(v.args ?? "", "Arguments");
      if (args !== undefined) body.args = args;
      /** @type {import("../../../sdk-ts/src/generated/openapi.ts").UpdateOutcome} */
      const r = await call("POST", `${base}/update/${enc((v.name ?? "").trim())}`, body);
      if (r.failure) throw new Error(`The update failed: ${r.failure.message}`);
      result = r.result;
    },
  });
  if (ok) {
    notify(`Update completed: ${JSON.stringify(result) ?? "null"}`);
    done();
  }
}

/** What the reason-only actions say and call. */
const CLOSERS = {
  cancel: { title: "Request cancellation", text: "The workflow is asked to cancel; it decides how to close.", confirm: "Request cancellation", done: "Cancellation requested." },
  terminate: { title: "Terminate the run", text: "The run closes at once; its workflow code gets no say.", confirm: "Terminate", done: "Run terminated." },
};

/**
 * Cancel or terminate, with a reason.
 * @param {keyof typeof CLOSERS} action @param {string} base @param {string} runId @param {() => void} done
 */
async function closeDialog(action, base, runId, done) {
  const words = CLOSERS[action];
  const ok = await openDialog({
    title: words.title,
    text: words.text,
    confirm: words.confirm,
    danger: true,
    fields: [{ name: "reason", label: "Reason", required: true }],
    action: async (v) => {
      await call("POST", `${base}/${action}`, { run_id: runId, reason: v.reason ?? "", identity: "baton-ui" });
    },
  });
  if (ok) {
    notify(words.done);
    done();
  }
}

/**
 * @param {string} ns @param {string} workflowId @param {string} base @param {string} runId
 * @param {Event[]} events
 */
async function resetDialog(ns, workflowId, base, runId, events) {
  const points = events.filter((e) => e.event_type === "WorkflowTaskCompleted").map((e) => `${e.event_id}`);
  if (points.length === 0) {
    notify("This run has no completed workflow task to reset to.", "error");
    return;
  }
  /** @type {string} */
  let newRun = "";
  const ok = await openDialog({
    title: "Reset the run",
    text: "A new run replays the history up to the chosen WorkflowTaskCompleted event; this run is terminated if still open.",
    confirm: "Reset",
    danger: true,
    fields: [
      { name: "event_id", label: "Reset to event (WorkflowTaskCompleted)", kind: "select", options: points },
      { name: "reason", label: "Reason", required: true },
    ],
    action: async (v) => {
      /** @type {import("../../../sdk-ts/src/generated/openapi.ts").ResetWorkflowResponse} */
      const r = await call("POST", `${base}/reset`, { run_id: runId, event_id: Number(v.event_id), reason: v.reason ?? "" });
      newRun = r.run_id;
    },
  });
  if (ok) {
    notify("Reset: a new run started.");
    navigate(runPath(ns, workflowId, newRun));
  }
}
