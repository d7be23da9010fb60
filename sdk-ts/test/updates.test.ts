/** Updates (protocol.md §5.6) replayed from literal histories: handlers, validators, CompleteWorkflowUpdate. */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Command, HistoryEvent, UpdateValidationRequest, WorkflowTaskRequest } from "../src/common.js";
import { handleUpdateValidation, handleWorkflowTask, type WorkflowFunction } from "../src/core/workflow_instance.js";
import { Replayer } from "../src/testing.js";
import { condition, setHandler } from "../src/workflow.js";
import { ShoppingCart, checkout, validatorRuns } from "./cart.js";

const T = "2025-01-01T00:00:00.000Z";

function history(...events: [string, Record<string, unknown>?][]): HistoryEvent[] {
  return events.map(([event_type, attributes], i) => ({ event_id: i + 1, event_time: T, event_type, attributes: attributes ?? {} }));
}

const START: [string, Record<string, unknown>?][] = [
  ["WorkflowExecutionStarted", { workflow_type: "Cart", task_queue: "q", input: [] }],
  ["WorkflowTaskScheduled"],
  ["WorkflowTaskStarted"],
  ["WorkflowTaskCompleted"],
];
const admitted = (id: string, name: string, args: unknown[]): [string, Record<string, unknown>] => [
  "WorkflowExecutionUpdateAdmitted",
  { update_id: id, update_name: name, input: args, identity: "test" },
];
const NEXT_TASK: [string, Record<string, unknown>?][] = [["WorkflowTaskScheduled"], ["WorkflowTaskStarted"]];

const request = (events: HistoryEvent[]): WorkflowTaskRequest => ({
  type: "workflow_task",
  namespace: "default",
  task_token: "t",
  workflow_id: "cart-1",
  run_id: "00000000-0000-4000-8000-000000000001",
  workflow_type: "Cart",
  task_queue: "q",
  attempt: 1,
  history: events,
});

async function commands(wf: WorkflowFunction, events: HistoryEvent[]): Promise<Command[]> {
  const answer = await handleWorkflowTask(wf, request(events));
  if ("failure" in answer) assert.fail(`the task failed: ${answer.failure.failure.message}`);
  return answer.commands;
}

const Cart = ShoppingCart;

test("an admitted update runs its handler; its result is completed before the workflow closes", async () => {
  const events = history(...START, admitted("u1", "add_item", ["apple", 2]), admitted("u2", "checkout", []), ...NEXT_TASK);
  // Both handlers start in delivery order; add_item's result is completed once its promise settles.
  assert.deepEqual(await commands(Cart, events), [
    { command_type: "ScheduleActivityTask", attributes: { activity_id: "1", activity_type: "reserve_items", input: [["apple", "apple"]], start_to_close_timeout: "10s" } },
    { command_type: "CompleteWorkflowUpdate", attributes: { update_id: "u1", result: 2 } },
  ]);
  const after = history(
    ...START,
    admitted("u1", "add_item", ["apple", 2]),
    admitted("u2", "checkout", []),
    ...NEXT_TASK,
    ["WorkflowTaskCompleted"],
    ["WorkflowExecutionUpdateAccepted", { update_id: "u1", admitted_event_id: 5 }],
    ["WorkflowExecutionUpdateAccepted", { update_id: "u2", admitted_event_id: 6 }],
    ["ActivityTaskScheduled", { activity_id: "1", activity_type: "reserve_items" }],
    ["WorkflowExecutionUpdateCompleted", { update_id: "u1", accepted_event_id: 10, result: 2, workflow_task_completed_event_id: 9 }],
    ["ActivityTaskStarted", { scheduled_event_id: 12 }],
    ["ActivityTaskCompleted", { scheduled_event_id: 12, result: "R-1" }],
    ...NEXT_TASK,
  );
  // The update's completion comes before the closing command, as the server requires.
  assert.deepEqual(await commands(Cart, after), [
    { command_type: "CompleteWorkflowUpdate", attributes: { update_id: "u2", result: "R-1" } },
    { command_type: "CompleteWorkflowExecution", attributes: { result: ["apple", "apple"] } },
  ]);
});

test("an ApplicationFailure fails the update, not the workflow; other errors fail the task", async () => {
  const events = history(...START, admitted("u1", "checkout", []), ...NEXT_TASK);
  const [cmd] = await commands(Cart, events);
  assert.equal(cmd?.command_type, "CompleteWorkflowUpdate");
  assert.equal(cmd.attributes.failure?.type, "EmptyCart");
  const broken = async (): Promise<void> => {
    setHandler(checkout, () => {
      throw new TypeError("a bug");
    });
    await condition(() => false);
  };
  const answer = await handleWorkflowTask(broken, request(events));
  assert.ok("failure" in answer);
  assert.match(answer.failure.failure.message, /a bug/);
});

test("update_validation: the validator accepts or rejects after replaying; unknown updates are rejected", async () => {
  const events = history(
    ...START,
    admitted("u1", "add_item", ["apple", 1]),
    ...NEXT_TASK,
    ["WorkflowTaskCompleted"],
    ["WorkflowExecutionUpdateAccepted", { update_id: "u1", admitted_event_id: 5 }],
    ["WorkflowExecutionUpdateCompleted", { update_id: "u1", accepted_event_id: 9, result: 1, workflow_task_completed_event_id: 8 }],
  );
  const validate = (name: string, args: unknown[]): UpdateValidationRequest => ({
    type: "update_validation",
    namespace: "default",
    workflow_id: "cart-1",
    run_id: "00000000-0000-4000-8000-000000000001",
    workflow_type: "Cart",
    task_queue: "q",
    update_id: "u9",
    update_name: name,
    update_args: args,
    history: events,
  });
  validatorRuns.count = 0;
  assert.deepEqual(await handleUpdateValidation(Cart, validate("add_item", ["pear", 3])), { accepted: true });
  // Replaying the admitted u1 ran its handler, never its validator.
  assert.equal(validatorRuns.count, 1);
  const rejected = await handleUpdateValidation(Cart, validate("add_item", ["pear", 0]));
  assert.ok("failure" in rejected);
  assert.equal(rejected.failure.type, "InvalidQuantity");
  assert.match(rejected.failure.message, /quantity must be positive, got 0/);
  const unknown = await handleUpdateValidation(Cart, validate("remove_item", []));
  assert.ok("failure" in unknown);
  assert.match(unknown.failure.message, /Registered updates: \[add_item checkout\]/);
});

test("a completed update replays, and a changed result order is a NonDeterminismError", async () => {
  const completed = history(
    ...START,
    admitted("u1", "add_item", ["apple", 1]),
    ...NEXT_TASK,
    ["WorkflowTaskCompleted"],
    ["WorkflowExecutionUpdateAccepted", { update_id: "u1", admitted_event_id: 5 }],
    ["WorkflowExecutionUpdateCompleted", { update_id: "u1", accepted_event_id: 9, result: 1, workflow_task_completed_event_id: 8 }],
  );
  await new Replayer({ Cart }).replay(completed);
  const noHandler = async (): Promise<void> => {
    await condition(() => false);
  };
  await assert.rejects(new Replayer({ Cart: noHandler }).replay(completed), /WorkflowExecutionUpdateCompleted/);
});
