/** CancellationScope and activity cancellation types, replayed from literal histories (Temporal's semantics). */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Command, HistoryEvent, WorkflowTaskRequest } from "../src/common.js";
import { handleWorkflowTask, type WorkflowFunction } from "../src/core/workflow_instance.js";
import {
  ActivityCancellationType,
  CancellationScope,
  CancelledFailure,
  condition,
  isCancellation,
  proxyActivities,
  sleep,
} from "../src/workflow.js";

const T = "2025-01-01T00:00:00.000Z";

/** A history from `[event_type, attributes]` pairs, numbered from 1. */
function history(...events: [string, Record<string, unknown>?][]): HistoryEvent[] {
  return events.map(([event_type, attributes], i) => ({ event_id: i + 1, event_time: T, event_type, attributes: attributes ?? {} }));
}

const START: [string, Record<string, unknown>?][] = [
  ["WorkflowExecutionStarted", { workflow_type: "W", task_queue: "q", input: [] }],
  ["WorkflowTaskScheduled"],
  ["WorkflowTaskStarted"],
];
const NEXT_TASK: [string, Record<string, unknown>?][] = [["WorkflowTaskScheduled"], ["WorkflowTaskStarted"]];

async function commands(wf: WorkflowFunction, events: HistoryEvent[]): Promise<Command[]> {
  const request: WorkflowTaskRequest = {
    type: "workflow_task",
    namespace: "default",
    task_token: "t",
    workflow_id: "wf",
    run_id: "00000000-0000-4000-8000-000000000001",
    workflow_type: "W",
    task_queue: "q",
    attempt: 1,
    history: events,
  };
  const answer = await handleWorkflowTask(wf, request);
  if ("failure" in answer) assert.fail(`the task failed: ${answer.failure.failure.message}`);
  return answer.commands;
}

const schedule = (id: string, type = "slow"): Command => ({
  command_type: "ScheduleActivityTask",
  attributes: { activity_id: id, activity_type: type, input: [], start_to_close_timeout: "60s" },
});
const requestCancel = (id: string): Command => ({ command_type: "RequestCancelActivityTask", attributes: { activity_id: id } });
const complete = (result: unknown): Command => ({ command_type: "CompleteWorkflowExecution", attributes: { result } });
const startTimer = (id: string, timeout: string): Command => ({ command_type: "StartTimer", attributes: { timer_id: id, start_to_fire_timeout: timeout } });

type Acts = { slow(): Promise<string>; cleanup(): Promise<string> };

/** Schedules `slow` in its own scope, waits 1 s, cancels the scope and reports what the activity's promise did. */
function cancelAfterASecond(cancellationType: ActivityCancellationType): WorkflowFunction {
  const { slow } = proxyActivities<Acts>({ startToCloseTimeout: "60s", cancellationType });
  return async () => {
    const scope = new CancellationScope();
    const p = scope.run(() => slow());
    await sleep("1s");
    scope.cancel();
    try {
      return `completed: ${await p}`;
    } catch (err) {
      return isCancellation(err) ? "cancelled" : `failed: ${String(err)}`;
    }
  };
}

/** The activity and the 1 s timer scheduled, the timer fired. */
const AFTER_TIMER = history(
  ...START,
  ["WorkflowTaskCompleted"],
  ["ActivityTaskScheduled", { activity_id: "1", activity_type: "slow" }],
  ["TimerStarted", { timer_id: "1" }],
  ["TimerFired", { timer_id: "1" }],
  ...NEXT_TASK,
);

test("TRY_CANCEL: cancelling the scope requests cancellation and the workflow goes on at once", async () => {
  const wf = cancelAfterASecond(ActivityCancellationType.TRY_CANCEL);
  assert.deepEqual(await commands(wf, history(...START)), [schedule("1"), startTimer("1", "1s")]);
  assert.deepEqual(await commands(wf, AFTER_TIMER), [requestCancel("1"), complete("cancelled")]);
});

test("WAIT_CANCELLATION_COMPLETED: the promise waits for the activity's acknowledgement (or its result)", async () => {
  const wf = cancelAfterASecond(ActivityCancellationType.WAIT_CANCELLATION_COMPLETED);
  assert.deepEqual(await commands(wf, AFTER_TIMER), [requestCancel("1")]);
  const requested = [
    ...AFTER_TIMER,
    ...history(["WorkflowTaskCompleted"], ["ActivityTaskCancelRequested", { scheduled_event_id: 5 }]).map((e, i) => ({ ...e, event_id: 10 + i })),
  ];
  const ack = (type: string, attributes: Record<string, unknown>): HistoryEvent[] =>
    [
      ["ActivityTaskStarted", { scheduled_event_id: 5 }],
      [type, { scheduled_event_id: 5, ...attributes }],
      ["WorkflowTaskScheduled", {}],
      ["WorkflowTaskStarted", {}],
    ].map(([event_type, attrs], i) => ({ event_id: 12 + i, event_time: T, event_type: event_type as string, attributes: attrs as Record<string, unknown> }));
  assert.deepEqual(await commands(wf, [...requested, ...ack("ActivityTaskCanceled", { details: null })]), [complete("cancelled")]);
  // The activity finished anyway: its result wins.
  assert.deepEqual(await commands(wf, [...requested, ...ack("ActivityTaskCompleted", { result: "done" })]), [complete("completed: done")]);
});

test("ABANDON: the promise rejects at once and the server is not told", async () => {
  const wf = cancelAfterASecond(ActivityCancellationType.ABANDON);
  assert.deepEqual(await commands(wf, AFTER_TIMER), [complete("cancelled")]);
});

test("an activity cancelled in the activation that scheduled it is never scheduled", async () => {
  const { slow } = proxyActivities<Acts>({ startToCloseTimeout: "60s" });
  const wf = async (): Promise<string> => {
    const scope = new CancellationScope();
    const p = scope.run(() => slow());
    scope.cancel();
    return p.then(
      () => "completed",
      (err: unknown) => (isCancellation(err) ? "cancelled" : "failed"),
    );
  };
  assert.deepEqual(await commands(wf, history(...START)), [complete("cancelled")]);
});

test("withTimeout: the scope's timer cancels the activity when it fires, and is cancelled when the activity wins", async () => {
  const { slow } = proxyActivities<Acts>({ startToCloseTimeout: "60s" });
  const wf = async (): Promise<string> => {
    try {
      return await CancellationScope.withTimeout("1m", () => slow());
    } catch (err) {
      if (isCancellation(err)) return "timed out";
      throw err;
    }
  };
  assert.deepEqual(await commands(wf, history(...START)), [startTimer("1", "60s"), schedule("1")]);
  const scheduled: [string, Record<string, unknown>?][] = [
    ...START,
    ["WorkflowTaskCompleted"],
    ["TimerStarted", { timer_id: "1" }],
    ["ActivityTaskScheduled", { activity_id: "1", activity_type: "slow" }],
  ];
  assert.deepEqual(await commands(wf, history(...scheduled, ["TimerFired", { timer_id: "1" }], ...NEXT_TASK)), [requestCancel("1"), complete("timed out")]);
  assert.deepEqual(
    await commands(wf, history(...scheduled, ["ActivityTaskStarted", { scheduled_event_id: 6 }], ["ActivityTaskCompleted", { scheduled_event_id: 6, result: "fast" }], ...NEXT_TASK)),
    [{ command_type: "CancelTimer", attributes: { timer_id: "1" } }, complete("fast")],
  );
});

test("nonCancellable: the workflow's cancellation does not reach the cleanup activity, and the run still ends cancelled", async () => {
  const { cleanup } = proxyActivities<Acts>({ startToCloseTimeout: "60s" });
  const wf = async (): Promise<string> => {
    try {
      await sleep("1h");
      return "slept";
    } catch (err) {
      if (!isCancellation(err)) throw err;
      // Cleanup after a cancellation: a cancellable scope would reject at once.
      await CancellationScope.nonCancellable(() => cleanup());
      throw err;
    }
  };
  const cancelled: [string, Record<string, unknown>?][] = [
    ...START,
    ["WorkflowTaskCompleted"],
    ["TimerStarted", { timer_id: "1" }],
    ["WorkflowExecutionCancelRequested", { cause: "user asked" }],
    ...NEXT_TASK,
  ];
  assert.deepEqual(await commands(wf, history(...cancelled)), [{ command_type: "CancelTimer", attributes: { timer_id: "1" } }, schedule("1", "cleanup")]);
  const cleaned = history(
    ...cancelled,
    ["WorkflowTaskCompleted"],
    ["TimerCanceled", { timer_id: "1" }],
    ["ActivityTaskScheduled", { activity_id: "1", activity_type: "cleanup" }],
    ["ActivityTaskStarted", { scheduled_event_id: 11 }],
    ["ActivityTaskCompleted", { scheduled_event_id: 11, result: "clean" }],
    ...NEXT_TASK,
  );
  assert.deepEqual(await commands(wf, cleaned), [{ command_type: "CancelWorkflowExecution", attributes: {} }]);
});

test("a workflow that ignores its cancellation inside nonCancellable completes normally", async () => {
  const { slow } = proxyActivities<Acts>({ startToCloseTimeout: "60s" });
  const wf = async (): Promise<string> => CancellationScope.nonCancellable(() => slow());
  const events = history(
    ...START,
    ["WorkflowTaskCompleted"],
    ["ActivityTaskScheduled", { activity_id: "1", activity_type: "slow" }],
    ["WorkflowExecutionCancelRequested", {}],
    ...NEXT_TASK,
  );
  assert.deepEqual(await commands(wf, events), []);
});

test("in a scope already cancelled, operations reject at once and issue no command; cancellation reaches nested scopes", async () => {
  const { slow } = proxyActivities<Acts>({ startToCloseTimeout: "60s" });
  const seen: string[] = [];
  const wf = async (): Promise<string[]> => {
    const outer = new CancellationScope();
    outer.cancel();
    await outer.run(async () => {
      assert.ok(CancellationScope.current() === outer);
      for (const [name, op] of [
        ["activity", () => slow()],
        ["timer", () => sleep("1h")],
        ["condition", () => condition(() => false)],
        ["nested scope", () => CancellationScope.cancellable(() => sleep("1h"))],
      ] as const) {
        await (op() as Promise<unknown>).then(
          () => seen.push(`${name} resolved`),
          (err: unknown) => seen.push(`${name}: ${isCancellation(err)}`),
        );
      }
      assert.equal(await CancellationScope.nonCancellable(async () => CancellationScope.current().consideredCancelled), false);
    });
    assert.ok(outer.consideredCancelled);
    return seen;
  };
  assert.deepEqual(await commands(wf, history(...START)), [complete(["activity: true", "timer: true", "condition: true", "nested scope: true"])]);
});

test("the current scope follows workflow code across awaits; the root scope is the default parent", async () => {
  const wf = async (): Promise<boolean[]> => {
    const root = CancellationScope.current();
    const scope = new CancellationScope();
    const checks = await scope.run(async () => {
      await sleep("1s");
      const inner = new CancellationScope({ cancellable: false });
      return [CancellationScope.current() === scope, scope.parent === root, inner.parent === scope, !inner.cancellable];
    });
    return [...checks, CancellationScope.current() === root, root.parent === undefined];
  };
  const events = history(...START, ["WorkflowTaskCompleted"], ["TimerStarted", { timer_id: "1" }], ["TimerFired", { timer_id: "1" }], ...NEXT_TASK);
  assert.deepEqual(await commands(wf, events), [complete([true, true, true, true, true, true])]);
});

test("a condition rejects when its scope is cancelled", async () => {
  const wf = async (): Promise<string> => {
    const scope = new CancellationScope();
    const waiting = scope.run(() => condition(() => false));
    await sleep("1s");
    scope.cancel();
    return waiting.then(
      () => "met",
      (err: unknown) => (err instanceof CancelledFailure ? err.message : "other"),
    );
  };
  const events = history(...START, ["WorkflowTaskCompleted"], ["TimerStarted", { timer_id: "1" }], ["TimerFired", { timer_id: "1" }], ...NEXT_TASK);
  assert.deepEqual(await commands(wf, events), [complete("Cancellation scope cancelled")]);
});

test("CancellationScope outside workflow code is an error", () => {
  assert.throws(() => new CancellationScope(), /only be called from workflow code/);
});
