import assert from "node:assert/strict";
import { test } from "node:test";
import type { HistoryEvent, QueryRequest } from "../src/common.js";
import { handleQuery, type WorkflowFunction } from "../src/core/workflow_instance.js";
import { condition, defineQuery, defineSignal, setHandler, sleep } from "../src/workflow.js";

const approve = defineSignal<[string]>("approve");
const status = defineQuery<string, [boolean?]>("status");
const broken = defineQuery<string>("broken");
const later = defineQuery<Promise<string>>("later");
const napping = defineQuery<string>("napping");

async function Approval(request: string): Promise<string> {
  let approver: string | undefined;
  setHandler(approve, (who: string) => {
    approver = who;
  });
  setHandler(status, (verbose?: boolean) => {
    const s = approver === undefined ? "waiting" : `approved by ${approver}`;
    return verbose ? `${request}: ${s}` : s;
  });
  setHandler(broken, () => {
    throw new Error("status unavailable");
  });
  setHandler(later, async () => "later");
  setHandler(napping, () => {
    void sleep("1 hour");
    return "napping";
  });
  await condition(() => approver !== undefined);
  return `approved by ${approver}`;
}

function ev(event_id: number, event_type: string, attributes: Record<string, unknown> = {}): HistoryEvent {
  return { event_id, event_type, event_time: `2026-01-01T00:00:0${event_id}Z`, attributes } as HistoryEvent;
}

const started = [
  ev(1, "WorkflowExecutionStarted", { workflow_type: "Approval", task_queue: "q", input: ["po-1"] }),
  ev(2, "WorkflowTaskScheduled"),
  ev(3, "WorkflowTaskStarted"),
  ev(4, "WorkflowTaskCompleted"),
];
const signalled = [...started, ev(5, "WorkflowExecutionSignaled", { signal_name: "approve", input: ["ann"] }), ev(6, "WorkflowTaskScheduled")];
const completed = [
  ...signalled,
  ev(7, "WorkflowTaskStarted"),
  ev(8, "WorkflowTaskCompleted"),
  ev(9, "WorkflowExecutionCompleted", { result: "approved by ann" }),
];

function query(history: HistoryEvent[], query_name: string, query_args: unknown[] = []): QueryRequest {
  return {
    type: "query",
    namespace: "default",
    workflow_id: "po-1",
    run_id: "00000000-0000-4000-8000-000000000011",
    workflow_type: "Approval",
    task_queue: "q",
    query_name,
    query_args,
    history,
    history_length: history.length,
  };
}

const fn = Approval as WorkflowFunction;

test("a query replays the history, then answers from the handler (with positional args)", async () => {
  assert.deepEqual(await handleQuery(fn, query(started, "status")), { result: "waiting" });
  assert.deepEqual(await handleQuery(fn, query(started, "status", [true])), { result: "po-1: waiting" });
  // The signal no task has delivered yet is seen; the commands it leads to are discarded.
  assert.deepEqual(await handleQuery(fn, query(signalled, "status")), { result: "approved by ann" });
  assert.deepEqual(await handleQuery(fn, query(completed, "status")), { result: "approved by ann" });
  // Only WorkflowExecutionStarted and a task not yet completed: the workflow is started for the query.
  assert.deepEqual(await handleQuery(fn, query(started.slice(0, 3), "status")), { result: "waiting" });
});

test("an unknown query, a throwing handler and an asynchronous handler answer failures", async () => {
  const unknown = await handleQuery(fn, query(completed, "nope"));
  assert.ok("failure" in unknown);
  assert.equal(unknown.failure.type, "QueryNotRegisteredError");
  assert.match(unknown.failure.message, /did not register a handler for nope\. Registered queries: \[broken later napping status\]/);
  const thrown = await handleQuery(fn, query(completed, "broken"));
  assert.ok("failure" in thrown);
  assert.equal(thrown.failure.message, "status unavailable");
  assert.equal(thrown.failure.type, "Error");
  const asynchronous = await handleQuery(fn, query(completed, "later"));
  assert.ok("failure" in asynchronous);
  assert.match(asynchronous.failure.message, /must be synchronous/);
  const commanding = await handleQuery(fn, query(started, "napping"));
  assert.ok("failure" in commanding);
  assert.match(commanding.failure.message, /issued a command/);
});

test("a query on an unregistered workflow type fails", async () => {
  const answer = await handleQuery(undefined, query(completed, "status"));
  assert.ok("failure" in answer);
  assert.equal(answer.failure.type, "NotFoundError");
});
