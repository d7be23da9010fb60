// The UI's pure modules in node, without a browser: the list filter the
// workflows page builds, the mapping of an invalid_query column back into
// the user's text, the queries of its batch jobs, the grouping of a
// history, and what a payload reference is.

import assert from "node:assert/strict";
import { test } from "node:test";
import { referenceDigest } from "../app/api.js";
import { causeChain, group } from "../app/history.js";
import { buildQuery, matchingQuery, quote, selectionQuery, userColumn } from "../app/query.js";

const none = { status: "", type: "", id: "", from: "", to: "", q: "" };

test("filters and the free-form query make one list filter", () => {
  assert.deepEqual(buildQuery(none), { query: "", offset: 0 });
  const view = { ...none, status: "TIMED_OUT", type: "Order", id: "o'1", q: "HistoryLength > 10 ORDER BY StartTime ASC" };
  assert.deepEqual(buildQuery(view), {
    query: "(HistoryLength > 10) AND ExecutionStatus = 'TimedOut' AND WorkflowType = 'Order' AND WorkflowId STARTS_WITH 'o\\'1' ORDER BY StartTime ASC",
    offset: 1,
  });
  // The counts leave the status and the order out and group by status.
  assert.equal(
    buildQuery(view, { status: false, order: false, suffix: "GROUP BY ExecutionStatus" }).query,
    "(HistoryLength > 10) AND WorkflowType = 'Order' AND WorkflowId STARTS_WITH 'o\\'1' GROUP BY ExecutionStatus",
  );
  // ORDER BY inside a string is text, not the clause.
  assert.equal(buildQuery({ ...none, q: "WorkflowId = 'x ORDER BY y'" }).query, "(WorkflowId = 'x ORDER BY y')");
  assert.equal(buildQuery({ ...none, from: "2025-01-02T03:04:05Z" }).query, "StartTime >= '2025-01-02T03:04:05.000Z'");
  assert.equal(quote("a\\b'c"), "'a\\\\b\\'c'");
});

test("batch jobs name the running runs of a selection or of a view", () => {
  assert.equal(selectionQuery(["r1", "r'2"]), "RunId IN ('r1', 'r\\'2') AND ExecutionStatus = 'Running'");
  // No filter: no job over the whole namespace; a filter of closed runs: none to name.
  assert.equal(matchingQuery(none), "");
  assert.equal(matchingQuery({ ...none, status: "COMPLETED", type: "Order" }), "");
  assert.equal(matchingQuery({ ...none, status: "RUNNING" }), "ExecutionStatus = 'Running'");
  // A batch query takes no ORDER BY; the status is said once.
  assert.equal(
    matchingQuery({ ...none, status: "RUNNING", type: "Order", q: "HistoryLength > 10 OR Bogus = 1 ORDER BY StartTime" }),
    "(HistoryLength > 10 OR Bogus = 1) AND WorkflowType = 'Order' AND ExecutionStatus = 'Running'",
  );
});

test("an invalid_query column points into the user's text, or nowhere", () => {
  const view = { ...none, type: "Order", q: "Bogus = 1" };
  const built = buildQuery(view);
  assert.equal(built.query, "(Bogus = 1) AND WorkflowType = 'Order'");
  assert.equal(userColumn(view, built, 2), 1);
  assert.equal(userColumn(view, built, 10), 9);
  assert.equal(userColumn(view, built, 20), undefined);
  assert.equal(userColumn(view, built, undefined), undefined);
  assert.equal(userColumn({ ...none, type: "x" }, buildQuery({ ...none, type: "x" }), 1), undefined);
});

/** @param {number} id @param {string} type @param {object} attributes @param {number} [sec] */
const ev = (id, type, attributes, sec = id) => /** @type {any} */ ({ event_id: id, event_time: new Date(Date.UTC(2025, 0, 1, 0, 0, sec)).toISOString(), event_type: type, attributes });

test("a history is grouped: an activity's events with its attempts, timers, children, the rest alone", () => {
  const failure = { message: "outer", cause: { message: "inner" } };
  const items = group([
    ev(1, "WorkflowExecutionStarted", { workflow_type: "W", task_queue: "q", input: null }),
    ev(2, "WorkflowTaskScheduled", {}),
    ev(3, "WorkflowTaskStarted", { scheduled_event_id: 2 }),
    ev(4, "WorkflowTaskCompleted", { scheduled_event_id: 2, started_event_id: 3 }),
    ev(5, "ActivityTaskScheduled", { activity_type: "charge", activity_id: "1", input: 7 }),
    ev(6, "TimerStarted", { timer_id: "t1", start_to_fire_timeout: "5s" }),
    ev(7, "StartChildWorkflowExecutionInitiated", { workflow_id: "kid", workflow_type: "K", input: null }),
    ev(8, "ChildWorkflowExecutionStarted", { initiated_event_id: 7, workflow_execution: { workflow_id: "kid", run_id: "r" }, workflow_type: "K" }),
    ev(9, "ActivityTaskStarted", { scheduled_event_id: 5, attempt: 3, last_failure: { message: "try 2" } }, 15),
    ev(10, "ActivityTaskFailed", { scheduled_event_id: 5, started_event_id: 9, failure, retry_state: "MAXIMUM_ATTEMPTS_REACHED" }, 16),
    ev(11, "TimerFired", { timer_id: "t1", started_event_id: 6 }, 11),
    ev(12, "WorkflowExecutionSignaled", { signal_name: "go" }),
  ]);
  assert.deepEqual(
    items.map((i) => [i.kind, i.name, i.state, i.events.map((e) => e.event_id)]),
    [
      ["event", "WorkflowExecutionStarted", "WorkflowExecutionStarted", [1]],
      ["workflow-task", "Workflow task", "Completed", [2, 3, 4]],
      ["activity", "charge", "Failed", [5, 9, 10]],
      ["timer", "t1", "Fired", [6, 11]],
      ["child", "K", "Running", [7, 8]],
      ["event", "WorkflowExecutionSignaled", "WorkflowExecutionSignaled", [12]],
    ],
  );
  const activity = items[2];
  assert.equal(activity?.attempts, 3);
  assert.equal(activity && activity.end !== undefined ? activity.end - activity.start : NaN, 11_000);
  assert.deepEqual(causeChain(activity?.failure).map((f) => f.message), ["outer", "inner"]);
  assert.deepEqual(items[4]?.child, { workflow_id: "kid", run_id: "r" });
  assert.equal(items[4]?.end, undefined);
  // An event naming an unknown opener stands alone rather than vanishing.
  assert.deepEqual(group([ev(3, "TimerFired", { timer_id: "x", started_event_id: 99 })]).map((i) => i.kind), ["event"]);
});

test("a payload reference is an object whose one member is $baton_payload with a digest", () => {
  const sha256 = "a".repeat(64);
  assert.equal(referenceDigest({ $baton_payload: { sha256, size_bytes: 3 } }), sha256);
  for (const not of [
    { $baton_payload: { sha256: "A".repeat(64) } },
    { $baton_payload: { sha256 }, other: 1 },
    [{ $baton_payload: { sha256 } }],
    { payload: { sha256 } },
    null,
    "text",
  ]) {
    assert.equal(referenceDigest(not), undefined, JSON.stringify(not));
  }
});
