// The workflows list: status counts (GROUP BY ExecutionStatus), filters and
// a free-form list filter, keyset pages, auto-refresh, and the whole view in
// the URL so that a link reproduces it. Also the start-workflow form, and
// batch terminate/cancel of the selected runs or of every running run the
// view matches (a batch job through the API's batches resource).

import { ApiError, call, enc, qs } from "../api.js";
import { openDialog } from "../dialogs.js";
import { badge, between, duration, h, mount, notify, parseJson, remount, table, time } from "../dom.js";
import { batchPath, link, navigate, nsPath, runPath } from "../nav.js";
import { STATUSES, buildQuery, matchingQuery, selectionQuery, userColumn } from "../query.js";

/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").WorkflowExecution} WorkflowExecution */
/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").WorkflowExecutionList} WorkflowExecutionList */
/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").WorkflowExecutionCount} WorkflowExecutionCount */
/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").BatchDescription} BatchDescription */

const PAGE_SIZE = 50;
const REFRESH_MS = 5000;

/** @param {URLSearchParams} q @returns {import("../query.js").View} */
function viewOf(q) {
  return {
    status: q.get("status") ?? "",
    type: q.get("type") ?? "",
    id: q.get("id") ?? "",
    from: q.get("from") ?? "",
    to: q.get("to") ?? "",
    q: q.get("q") ?? "",
  };
}

/** @param {import("../nav.js").PageContext} ctx */
export async function workflowsPage(ctx) {
  const { root, ns, signal } = ctx;
  const view = viewOf(ctx.query);
  const refresh = ctx.query.get("refresh") === "1";
  /** @type {string[]} page tokens of the pages before this one */
  const tokens = [];
  /** @type {string | undefined} */
  let token = ctx.query.get("page") ?? undefined;

  /** @param {Partial<import("../query.js").View> & { refresh?: boolean }} change */
  const go = (change) => {
    const next = { ...view, ...change };
    const params = { ...next, refresh: (change.refresh ?? refresh) ? "1" : "" };
    navigate(`${nsPath(ns)}/workflows${qs(params)}`);
  };

  const counts = h("div", { class: "counts", role: "group", "aria-label": "Runs by status" });
  const body = h("div", { class: "list" });
  const pager = h("div", { class: "pager" });
  const queryError = h("p", { class: "error", id: "query-error", role: "alert" });

  /** The run ids of the selected runs, running runs of the page shown. @type {Set<string>} */
  const selected = new Set();
  /** The run ids of the running runs of the page shown. @type {Set<string>} */
  let running = new Set();
  const selectPage = h("input", { type: "checkbox", id: "select-page", "data-focus": "select-page", "aria-label": "Select the running runs on this page" });
  selectPage.addEventListener("change", () => {
    for (const run of running) {
      if (selectPage.checked) selected.add(run);
      else selected.delete(run);
    }
    for (const box of body.querySelectorAll("input.pick")) {
      if (box instanceof HTMLInputElement && !box.disabled) box.checked = selectPage.checked;
    }
    showSelection();
  });
  const count = h("span", { id: "selected-count", class: "muted" });
  const terminateSelected = h("button", { type: "button", class: "danger", onclick: () => void onSelection("terminate") }, "Terminate selected");
  const cancelSelected = h("button", { type: "button", onclick: () => void onSelection("cancel") }, "Cancel selected");
  const matching = matchingQuery(view);
  const started = h("p", { id: "batch-started", class: "started", role: "status" });
  const bulk = h(
    "div",
    { class: "bulk", role: "toolbar", "aria-label": "Batch actions" },
    count,
    terminateSelected,
    cancelSelected,
    matching
      ? [
          h("span", { class: "spacer" }),
          h("button", { type: "button", class: "danger", onclick: () => void onMatching("terminate") }, "Terminate all matching"),
          h("button", { type: "button", onclick: () => void onMatching("cancel") }, "Cancel all matching"),
        ]
      : null,
  );
  /** Shows the selection's size in the toolbar and the page's checkbox. */
  function showSelection() {
    const n = selected.size;
    count.textContent = n ? `${plural(n, "run")} selected` : "No runs selected";
    terminateSelected.disabled = n === 0;
    cancelSelected.disabled = n === 0;
    const onPage = [...running].filter((r) => selected.has(r)).length;
    selectPage.disabled = running.size === 0;
    selectPage.checked = running.size > 0 && onPage === running.size;
    selectPage.indeterminate = onPage > 0 && onPage < running.size;
  }

  /** @param {BatchOp} op */
  async function onSelection(op) {
    const n = selected.size;
    if (n === 0) return;
    const text = `A batch job ${OPS[op].verb} the ${n === 1 ? "selected run" : `${n} selected runs`} that ${n === 1 ? "is" : "are"} still running.`;
    await batch(op, selectionQuery([...selected]), n, text);
  }

  /** @param {BatchOp} op */
  async function onMatching(op) {
    try {
      /** @type {WorkflowExecutionCount} */
      const c = await call("GET", `/namespaces/${enc(ns)}/workflow-count${qs({ query: matching })}`);
      if (c.count === 0) {
        notify("No running run matches this view.", "error");
        return;
      }
      const text = `A batch job ${OPS[op].verb} the ${plural(c.count, "running run")} this view matches (counted now; runs started later are left alone): ${matching}`;
      await batch(op, matching, c.count, text);
    } catch (e) {
      notify(e instanceof Error ? e.message : String(e), "error");
    }
  }

  /**
   * Confirms with a reason, starts the job, and links to it.
   * @param {BatchOp} op @param {string} query @param {number} n @param {string} text
   */
  async function batch(op, query, n, text) {
    /** @type {BatchDescription | undefined} */
    let job = undefined;
    // One id per dialog: a start retried after a lost answer gets its job, not a second one.
    const requestId = uuid();
    const ok = await openDialog({
      title: `${OPS[op].title} ${plural(n, "run")}`,
      text: `${text} ${OPS[op].text}`,
      confirm: `${OPS[op].confirm} ${plural(n, "run")}`,
      danger: true,
      fields: [{ name: "reason", label: "Reason", required: true }],
      action: async (v) => {
        const reason = (v.reason ?? "").trim();
        if (!reason) throw new Error("Give a reason: it is recorded on every run.");
        /** @type {import("../../../sdk-ts/src/generated/openapi.ts").StartBatchRequest} */
        const request = { query, operation: op, reason, identity: "baton-ui", request_id: requestId };
        job = await call("POST", `/namespaces/${enc(ns)}/batches`, request);
      },
    });
    if (!ok || !job) return;
    const j = /** @type {BatchDescription} */ (job);
    mount(started, "Batch job ", link(batchPath(ns, j.batch_id), j.batch_id), ` started: ${op} ${plural(j.total, "run")}.`);
    selected.clear();
    await Promise.all([loadCounts().catch(() => {}), loadPage()]);
  }

  const form = filters(view, refresh, go);
  const start = h("button", { type: "button", class: "primary", onclick: () => void startDialog(ns) }, "Start workflow");
  mount(
    root,
    h("div", { class: "title" }, h("h1", {}, "Workflows"), start),
    counts,
    form,
    queryError,
    started,
    bulk,
    body,
    pager,
  );

  async function loadCounts() {
    const built = buildQuery(view, { status: false, order: false, suffix: "GROUP BY ExecutionStatus" });
    /** @type {WorkflowExecutionCount} */
    const c = await call("GET", `/namespaces/${enc(ns)}/workflow-count${qs({ query: built.query })}`);
    /** @type {Record<string, number>} */
    const by = {};
    for (const g of c.groups ?? []) by[g.group_values[0] ?? ""] = g.count;
    /** @param {string} status @param {string} label @param {number} n */
    const chip = (status, label, n) =>
      h(
        "button",
        { type: "button", class: `chip${view.status === status ? " active" : ""}`, "aria-pressed": view.status === status ? "true" : "false", "data-status": status, onclick: () => go({ status }) },
        label,
        " ",
        h("strong", {}, n),
      );
    mount(
      counts,
      chip("", "All", c.count),
      Object.entries(STATUSES).map(([api, name]) => chip(api, name, by[name] ?? by[api] ?? 0)),
    );
  }

  async function loadPage() {
    const built = buildQuery(view);
    /** @type {WorkflowExecutionList} */
    let list;
    try {
      list = await call("GET", `/namespaces/${enc(ns)}/workflows${qs({ query: built.query, page_size: PAGE_SIZE, next_page_token: token })}`);
      queryError.textContent = "";
    } catch (e) {
      if (e instanceof ApiError && e.problem.code === "invalid_query") {
        const col = userColumn(view, built, e.problem.column);
        const where = col !== undefined ? ` (column ${col}${e.problem.token ? `, at “${e.problem.token}”` : ""})` : "";
        queryError.textContent = `Invalid query${where}: ${e.message}`;
        mount(body);
        mount(pager);
        return;
      }
      throw e;
    }
    running = new Set(list.executions.filter((w) => w.status === "RUNNING").map((w) => w.run_id));
    // The selection is of runs this page shows running: one that closed, or
    // is on another page, drops out of it.
    for (const run of [...selected]) if (!running.has(run)) selected.delete(run);
    const rows = list.executions.map((w) =>
      h(
        "tr",
        { "data-run-id": w.run_id },
        h("td", { class: "select" }, pick(w)),
        h("td", { class: "wid" }, link(runPath(ns, w.workflow_id, w.run_id), w.workflow_id)),
        h("td", {}, w.workflow_type),
        h("td", {}, badge(w.status)),
        h("td", {}, time(w.start_time)),
        h("td", {}, time(w.close_time)),
        h("td", { class: "num" }, duration(between(w.start_time, w.close_time))),
        h("td", {}, w.task_queue),
        h("td", {}, w.pinned_version ?? ""),
      ),
    );
    remount(
      body,
      rows.length
        ? table([selectPage, "Workflow ID", "Type", "Status", "Start", "Close", "Duration", "Task queue", "Version"], rows, { class: "runs", "aria-label": "Workflow runs" })
        : h("p", { class: "muted empty" }, "No runs match."),
    );
    showSelection();
    const prev = h("button", { type: "button", disabled: tokens.length === 0 }, "← Previous");
    const next = h("button", { type: "button", disabled: !list.next_page_token }, "Next →");
    /** Keeps the page's token in the URL, so a link opens this page. */
    const remember = () => {
      const params = new URLSearchParams(location.search);
      if (token) params.set("page", token);
      else params.delete("page");
      const s = params.toString();
      navigate(`${nsPath(ns)}/workflows${s ? `?${s}` : ""}`, { replace: true, render: false });
    };
    prev.addEventListener("click", () => {
      token = tokens.pop() || undefined;
      remember();
      void loadPage();
    });
    next.addEventListener("click", () => {
      tokens.push(token ?? "");
      token = list.next_page_token;
      remember();
      void loadPage();
    });
    mount(pager, prev, h("span", { class: "muted" }, `page ${tokens.length + 1}`), next);
  }

  /**
   * A run's checkbox: running runs only (a batch terminate or cancel of a
   * closed run has nothing to do).
   * @param {WorkflowExecution} w
   */
  function pick(w) {
    const open = w.status === "RUNNING";
    const box = h("input", {
      type: "checkbox",
      class: "pick",
      "data-focus": w.run_id,
      "aria-label": open ? `Select ${w.workflow_id}` : `${w.workflow_id} is closed`,
      disabled: !open,
      checked: selected.has(w.run_id),
    });
    box.addEventListener("change", () => {
      if (box.checked) selected.add(w.run_id);
      else selected.delete(w.run_id);
      showSelection();
    });
    return box;
  }

  await Promise.all([loadCounts().catch(() => mount(counts)), loadPage()]);
  if (refresh) {
    const timer = setInterval(() => {
      void Promise.all([loadCounts().catch(() => {}), loadPage()]).catch((e) => notify(String(e), "error"));
    }, REFRESH_MS);
    signal.addEventListener("abort", () => clearInterval(timer));
  }
}

/**
 * The filter bar.
 * @param {import("../query.js").View} view
 * @param {boolean} refresh
 * @param {(change: Partial<import("../query.js").View> & { refresh?: boolean }) => void} go
 */
function filters(view, refresh, go) {
  const status = h("select", { id: "f-status", name: "status" }, h("option", { value: "" }, "Any status"), Object.keys(STATUSES).map((s) => h("option", { value: s, selected: s === view.status }, s)));
  const type = h("input", { id: "f-type", name: "type", placeholder: "Workflow type", value: view.type });
  const id = h("input", { id: "f-id", name: "id", placeholder: "Workflow ID prefix", value: view.id });
  const from = h("input", { id: "f-from", name: "from", type: "datetime-local", value: view.from, "aria-label": "Started after" });
  const to = h("input", { id: "f-to", name: "to", type: "datetime-local", value: view.to, "aria-label": "Started before" });
  const q = h("input", { id: "f-query", name: "q", class: "query", placeholder: "List filter, e.g. WorkflowType = 'Order' AND StartTime > '2025-01-01T00:00:00Z' ORDER BY StartTime", value: view.q, spellcheck: "false", "aria-label": "List filter" });
  const auto = h("input", { id: "f-refresh", type: "checkbox", checked: refresh });
  auto.addEventListener("change", () => go({ refresh: auto.checked }));
  const form = h(
    "form",
    { class: "filters", role: "search" },
    h("label", { for: "f-status", class: "sr-only" }, "Status"),
    status,
    h("label", { for: "f-type", class: "sr-only" }, "Workflow type"),
    type,
    h("label", { for: "f-id", class: "sr-only" }, "Workflow ID prefix"),
    id,
    h("span", { class: "range" }, "from ", from, " to ", to),
    q,
    h("button", { type: "submit", class: "primary" }, "Apply"),
    h("button", { type: "button", onclick: () => go({ status: "", type: "", id: "", from: "", to: "", q: "" }) }, "Clear"),
    h("label", { class: "toggle" }, auto, " Auto-refresh"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    go({ status: status.value, type: type.value.trim(), id: id.value.trim(), from: from.value, to: to.value, q: q.value.trim() });
  });
  return form;
}

/** @typedef {"terminate" | "cancel"} BatchOp */

/** What the batch actions say. */
const OPS = {
  terminate: { title: "Terminate", verb: "terminates", confirm: "Terminate", text: "Each closes at once; its workflow code gets no say." },
  cancel: { title: "Cancel", verb: "requests cancellation of", confirm: "Request cancellation of", text: "Each workflow decides how to close." },
};

/** @param {number} n @param {string} noun */
const plural = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;

/** A random (version 4) UUID; `crypto.randomUUID` exists only on https and localhost. */
function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const x = [...b].map((v) => v.toString(16).padStart(2, "0")).join("");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** @param {string} ns */
async function startDialog(ns) {
  /** @type {string | undefined} */
  let started = undefined;
  /** @type {string} */
  let workflowId = "";
  const ok = await openDialog({
    title: "Start a workflow",
    confirm: "Start",
    fields: [
      { name: "workflow_type", label: "Workflow type", required: true },
      { name: "task_queue", label: "Task queue", required: true },
      { name: "workflow_id", label: "Workflow ID", required: true, value: `wf-${Date.now().toString(36)}` },
      { name: "input", label: "Input (JSON)", kind: "json" },
    ],
    action: async (v) => {
      const input = parseJson(v.input ?? "", "Input");
      workflowId = (v.workflow_id ?? "").trim();
      /** @type {import("../../../sdk-ts/src/generated/openapi.ts").StartWorkflowRequest} */
      const body = { workflow_type: (v.workflow_type ?? "").trim(), task_queue: (v.task_queue ?? "").trim(), identity: "baton-ui" };
      if (input !== undefined) body.input = input;
      /** @type {import("../../../sdk-ts/src/generated/openapi.ts").StartWorkflowResponse} */
      const r = await call("POST", `/namespaces/${enc(ns)}/workflows/${enc(workflowId)}`, body);
      started = r.run_id;
    },
  });
  if (ok && started) navigate(runPath(ns, workflowId, started));
}
