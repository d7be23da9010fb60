/** Child workflows and external handles (protocol.md §5.6) replayed from literal histories. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Command, HistoryEvent, WorkflowTaskRequest } from "../src/common.js";
import { handleWorkflowTask, type WorkflowFunction } from "../src/core/workflow_instance.js";
import { ChildWorkflowFailure, ParentClosePolicy, WorkflowExecutionAlreadyStartedError, executeChild, getExternalWorkflowHandle, isCancellation } from "../src/workflow.js";

const T = "2025-01-01T00:00:00.000Z";

function history(...events: [string, Record<string, unknown>?][]): HistoryEvent[] {
  return events.map(([event_type, attributes], i) => ({ event_id: i + 1, event_time: T, event_type, attributes: attributes ?? {} }));
}

const START: [string, Record<string, unknown>?][] = [
  ["WorkflowExecutionStarted", { workflow_type: "Order", task_queue: "q", input: [["a", "b"]] }],
  ["WorkflowTaskScheduled"],
  ["WorkflowTaskStarted"],
];
const NEXT_TASK: [string, Record<string, unknown>?][] = [["WorkflowTaskScheduled"], ["WorkflowTaskStarted"]];

async function answer(wf: WorkflowFunction, events: HistoryEvent[]): Promise<Command[]> {
  const request: WorkflowTaskRequest = {
    type: "workflow_task",
    namespace: "default",
    task_token: "t",
    workflow_id: "order-1",
    run_id: "00000000-0000-4000-8000-000000000001",
    workflow_type: "Order",
    task_queue: "q",
    attempt: 1,
    history: events,
  };
  const a = await handleWorkflowTask(wf, request);
  if ("failure" in a) assert.fail(a.failure.failure.message);
  return a.commands;
}

async function Fulfill(line: string): Promise<string> {
  return line;
}

/** One child per order line, on another queue, in parallel. */
async function Order(lines: string[]): Promise<unknown> {
  try {
    return await Promise.all(lines.map((line) => executeChild(Fulfill, { workflowId: `fulfill-${line}`, args: [line], taskQueue: "fulfillment", parentClosePolicy: ParentClosePolicy.ABANDON })));
  } catch (err) {
    if (isCancellation(err)) throw err;
    if (err instanceof ChildWorkflowFailure) return { failed: err.execution.workflowId, cause: err.cause?.message };
    if (err instanceof WorkflowExecutionAlreadyStartedError) return { taken: err.workflowId };
    throw err;
  }
}

const initiated = (line: string): [string, Record<string, unknown>] => [
  "StartChildWorkflowExecutionInitiated",
  { workflow_id: `fulfill-${line}`, workflow_type: "Fulfill", task_queue: "fulfillment", input: [line], workflow_task_timeout: "10s", parent_close_policy: "ABANDON" },
];
const childStarted = (line: string, initiatedId: number): [string, Record<string, unknown>] => [
  "ChildWorkflowExecutionStarted",
  { workflow_execution: { workflow_id: `fulfill-${line}`, run_id: `run-${line}` }, workflow_type: "Fulfill", initiated_event_id: initiatedId },
];
const closed = (type: string, line: string, initiatedId: number, startedId: number, extra: Record<string, unknown>): [string, Record<string, unknown>] => [
  type,
  { workflow_execution: { workflow_id: `fulfill-${line}`, run_id: `run-${line}` }, workflow_type: "Fulfill", initiated_event_id: initiatedId, started_event_id: startedId, ...extra },
];
const RUNNING: [string, Record<string, unknown>?][] = [...START, ["WorkflowTaskCompleted"], initiated("a"), initiated("b"), childStarted("a", 5), childStarted("b", 6)];

test("children start in parallel with their options, and their results come back in order", async () => {
  assert.deepEqual(await answer(Order, history(...START)), [
    { command_type: "StartChildWorkflowExecution", attributes: { workflow_id: "fulfill-a", workflow_type: "Fulfill", input: ["a"], task_queue: "fulfillment", parent_close_policy: "ABANDON" } },
    { command_type: "StartChildWorkflowExecution", attributes: { workflow_id: "fulfill-b", workflow_type: "Fulfill", input: ["b"], task_queue: "fulfillment", parent_close_policy: "ABANDON" } },
  ]);
  const done = history(...RUNNING, closed("ChildWorkflowExecutionCompleted", "b", 6, 8, { result: "B" }), closed("ChildWorkflowExecutionCompleted", "a", 5, 7, { result: "A" }), ...NEXT_TASK);
  assert.deepEqual(await answer(Order, done), [{ command_type: "CompleteWorkflowExecution", attributes: { result: ["A", "B"] } }]);
});

test("a child's failure is a ChildWorkflowFailure; a taken id is WorkflowExecutionAlreadyStartedError", async () => {
  const failed = history(...RUNNING, closed("ChildWorkflowExecutionFailed", "a", 5, 7, { failure: { message: "out of stock", type: "OutOfStock" }, retry_state: "RETRY_POLICY_NOT_SET" }), ...NEXT_TASK);
  assert.deepEqual(await answer(Order, failed), [{ command_type: "CompleteWorkflowExecution", attributes: { result: { failed: "fulfill-a", cause: "out of stock" } } }]);
  const taken = history(
    ...START,
    ["WorkflowTaskCompleted"],
    initiated("a"),
    initiated("b"),
    ["StartChildWorkflowExecutionFailed", { workflow_id: "fulfill-a", workflow_type: "Fulfill", cause: "WORKFLOW_ALREADY_EXISTS", initiated_event_id: 5 }],
    ...NEXT_TASK,
  );
  assert.deepEqual(await answer(Order, taken), [{ command_type: "CompleteWorkflowExecution", attributes: { result: { taken: "fulfill-a" } } }]);
});

test("cancelling the parent asks its children to cancel and waits for them (WAIT_CANCELLATION_COMPLETED)", async () => {
  const cancelRequested = history(...RUNNING, ["WorkflowExecutionCancelRequested", { cause: "customer cancelled" }], ...NEXT_TASK);
  assert.deepEqual(await answer(Order, cancelRequested), [
    { command_type: "RequestCancelExternalWorkflowExecution", attributes: { workflow_id: "fulfill-a", child_workflow_only: true } },
    { command_type: "RequestCancelExternalWorkflowExecution", attributes: { workflow_id: "fulfill-b", child_workflow_only: true } },
  ]);
  const ref = (line: string): Record<string, unknown> => ({ workflow_execution: { workflow_id: `fulfill-${line}`, run_id: `run-${line}` }, child_workflow_only: true, reason: "" });
  const canceled = history(
    ...RUNNING,
    ["WorkflowExecutionCancelRequested", { cause: "customer cancelled" }],
    ...NEXT_TASK,
    ["WorkflowTaskCompleted"],
    ["RequestCancelExternalWorkflowExecutionInitiated", ref("a")],
    ["RequestCancelExternalWorkflowExecutionInitiated", ref("b")],
    ["ExternalWorkflowExecutionCancelRequested", { workflow_execution: { workflow_id: "fulfill-a" }, initiated_event_id: 14 }],
    closed("ChildWorkflowExecutionCanceled", "a", 5, 7, {}),
    ...NEXT_TASK,
  );
  assert.deepEqual(await answer(Order, canceled), [{ command_type: "CancelWorkflowExecution", attributes: {} }]);
});

test("an external handle signals and cancels another workflow, and learns whether it exists", async () => {
  const wf = async (): Promise<string> => {
    const other = getExternalWorkflowHandle("inventory");
    await other.signal("restock", 5);
    try {
      await getExternalWorkflowHandle("gone").cancel();
      return "cancelled";
    } catch (err) {
      return (err as Error).message;
    }
  };
  assert.deepEqual(await answer(wf, history(...START)), [
    { command_type: "SignalExternalWorkflowExecution", attributes: { workflow_id: "inventory", signal_name: "restock", input: [5] } },
  ]);
  const events = history(
    ...START,
    ["WorkflowTaskCompleted"],
    ["SignalExternalWorkflowExecutionInitiated", { workflow_execution: { workflow_id: "inventory" }, signal_name: "restock", input: [5], child_workflow_only: false }],
    ["ExternalWorkflowExecutionSignaled", { workflow_execution: { workflow_id: "inventory" }, initiated_event_id: 5 }],
    ...NEXT_TASK,
    ["WorkflowTaskCompleted"],
    ["RequestCancelExternalWorkflowExecutionInitiated", { workflow_execution: { workflow_id: "gone" }, child_workflow_only: false, reason: "" }],
    ["RequestCancelExternalWorkflowExecutionFailed", { workflow_execution: { workflow_id: "gone" }, cause: "EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND", initiated_event_id: 10 }],
    ...NEXT_TASK,
  );
  assert.deepEqual(await answer(wf, events), [
    { command_type: "CompleteWorkflowExecution", attributes: { result: "Unable to cancel external workflow gone because it was not found" } },
  ]);
});
