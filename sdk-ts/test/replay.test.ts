import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { NonDeterminismError, type HistoryEvent, type WorkflowTaskRequest } from "../src/common.js";
import { handleWorkflowTask, type WorkflowFunction } from "../src/core/workflow_instance.js";
import type { CompleteWorkflowExecutionCommand } from "../src/generated/openapi.js";
import { Replayer } from "../src/testing.js";
import { uuid4, workflowInfo } from "../src/workflow.js";
import { Onboarding, OnboardingChanged, OnboardingPatched, TrialExpiry } from "./onboarding.js";
import { REPO_ROOT } from "./paths.js";

function history(name: string): { workflow_id: string; run_id: string; events: HistoryEvent[] } {
  return JSON.parse(readFileSync(path.join(REPO_ROOT, "sdk-py", "tests", "histories", `${name}.json`), "utf8"));
}

function task(events: HistoryEvent[], workflowType = "Onboarding"): WorkflowTaskRequest {
  return {
    type: "workflow_task",
    namespace: "default",
    task_token: "t",
    workflow_id: "wf",
    run_id: "00000000-0000-4000-8000-000000000009",
    workflow_type: workflowType,
    task_queue: "q",
    attempt: 1,
    history: events,
  };
}

test("replays sdk-py's recorded histories (parallel activities, 7-day sleep, out-of-order completions)", async () => {
  await new Replayer({ Onboarding }).replay(history("onboarding"));
  await new Replayer({ Onboarding }).replay(history("server_onboarding"));
  await new Replayer({ TrialExpiry }).replay(history("trial_expiry"));
});

test("patched: new code replays histories with and without the core_patch marker", async () => {
  await new Replayer({ Onboarding: OnboardingPatched }).replay(history("onboarding_patched"));
  await new Replayer({ Onboarding: OnboardingPatched }).replay(history("onboarding"));
});

test("a patched history fails on code without the patch", async () => {
  await assert.rejects(new Replayer({ Onboarding }).replay(history("onboarding_patched")), NonDeterminismError);
});

test("a changed workflow is a NonDeterminismError naming the event and both sides", async () => {
  const answer = await handleWorkflowTask(OnboardingChanged as WorkflowFunction, task(history("onboarding").events.slice(0, 9)));
  assert.ok("failure" in answer);
  assert.equal(answer.failure.cause, "NON_DETERMINISTIC_ERROR");
  assert.equal(answer.failure.failure.type, "NonDeterminismError");
  assert.match(answer.failure.failure.message, /ActivityTaskScheduled\(activity_type="create_account", activity_id="1"\) at event 5/);
  assert.match(answer.failure.failure.message, /StartTimer\(timer_id="1"\)/);
  await assert.rejects(new Replayer({ Onboarding: OnboardingChanged }).replay(history("onboarding")), NonDeterminismError);
});

test("a partial history answers with the next commands (parallel activities in one task)", async () => {
  const answer = await handleWorkflowTask(Onboarding as WorkflowFunction, task(history("onboarding").events.slice(0, 9)));
  assert.deepEqual(answer, {
    commands: [
      {
        command_type: "ScheduleActivityTask",
        attributes: {
          activity_id: "2",
          activity_type: "send_welcome_email",
          input: [{ id: "u1", email: "u1@example.com", plan: "pro" }],
          start_to_close_timeout: "30s",
        },
      },
      {
        command_type: "ScheduleActivityTask",
        attributes: { activity_id: "3", activity_type: "provision_workspace", input: ["acct-u1"], start_to_close_timeout: "30s" },
      },
    ],
  });
  const afterBoth = await handleWorkflowTask(Onboarding as WorkflowFunction, task(history("onboarding").events.slice(0, 18)));
  assert.deepEqual(afterBoth, { commands: [{ command_type: "StartTimer", attributes: { timer_id: "1", start_to_fire_timeout: "604800s" } }] });
});

test("a new run records the patch marker before the patched branch's activity", async () => {
  const answer = await handleWorkflowTask(OnboardingPatched as WorkflowFunction, task(history("onboarding_patched").events.slice(0, 9)));
  assert.ok("commands" in answer);
  assert.deepEqual(answer.commands[0], {
    command_type: "RecordMarker",
    attributes: { marker_name: "core_patch", details: { patch_id: "audit-step", deprecated: false } },
  });
  assert.equal(answer.commands[1]?.command_type, "ScheduleActivityTask");
  assert.equal(answer.commands[1].attributes.activity_type, "audit");
});

test("Date.now, new Date() and Math.random are deterministic inside workflow code and restored after", async () => {
  const events = history("onboarding").events.slice(0, 3);
  const wf = async (): Promise<unknown> => [Date.now(), new Date().toISOString(), Math.random(), uuid4(), workflowInfo().workflowId];
  const a = await handleWorkflowTask(wf, task(events));
  const b = await handleWorkflowTask(wf, task(events));
  assert.deepEqual(a, b);
  assert.ok("commands" in a);
  const result = (a.commands[0] as CompleteWorkflowExecutionCommand).attributes.result as unknown[];
  assert.equal(result[0], Date.parse(events[2]!.event_time));
  assert.equal(result[1], events[2]!.event_time);
  assert.match(String(result[3]), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(result[4], "wf");
  assert.ok(Math.abs(Date.now() - new Date().getTime()) < 1000);
  assert.notEqual(Date.now(), result[0]);
});

test("an unexpected error fails the task; an ApplicationFailure fails the workflow", async () => {
  const events = history("onboarding").events.slice(0, 3);
  const bug = await handleWorkflowTask(async () => {
    throw new TypeError("oops");
  }, task(events));
  assert.ok("failure" in bug);
  assert.equal(bug.failure.cause, "WORKFLOW_WORKER_UNHANDLED_FAILURE");
  assert.equal(bug.failure.failure.type, "TypeError");
  const { ApplicationFailure } = await import("../src/common.js");
  const failed = await handleWorkflowTask(async () => {
    throw ApplicationFailure.nonRetryable("no", "Nope");
  }, task(events));
  assert.ok("commands" in failed);
  assert.equal(failed.commands[0]?.command_type, "FailWorkflowExecution");
  assert.equal((failed.commands[0]?.attributes.failure as { type: string }).type, "Nope");
});

test("condition with a timeout: a timer, cancelled when the condition wins", async () => {
  const { condition } = await import("../src/workflow.js");
  const events = history("onboarding").events.slice(0, 3);
  const timedOut = await handleWorkflowTask(async () => condition(() => false, "1h"), task(events));
  assert.deepEqual(timedOut, { commands: [{ command_type: "StartTimer", attributes: { timer_id: "1", start_to_fire_timeout: "3600s" } }] });
  const wins = await handleWorkflowTask(async () => {
    let flag = false;
    const p = condition(() => flag, "1h");
    await Promise.resolve();
    flag = true;
    return p;
  }, task(events));
  assert.deepEqual(wins, { commands: [{ command_type: "CompleteWorkflowExecution", attributes: { result: true } }] });
});

test("signals: delivered in history order, buffered until their handler is set", async () => {
  const { condition, defineSignal, setHandler } = await import("../src/workflow.js");
  const approve = defineSignal<[string]>("approve");
  const wf = async (): Promise<string[]> => {
    const got: string[] = [];
    await condition(() => false, "1s").catch(() => undefined); // a timer to make a second task
    setHandler(approve, (who: string) => {
      got.push(who);
    });
    await condition(() => got.length >= 2);
    return got;
  };
  const t = "2025-01-01T00:00:00.000Z";
  const ev = (id: number, type: string, attributes: Record<string, unknown> = {}): HistoryEvent => ({
    event_id: id,
    event_time: t,
    event_type: type,
    attributes,
  });
  const events = [
    ev(1, "WorkflowExecutionStarted", { workflow_type: "Signals", task_queue: "q", input: [] }),
    ev(2, "WorkflowTaskScheduled"),
    ev(3, "WorkflowTaskStarted"),
    ev(4, "WorkflowTaskCompleted"),
    ev(5, "TimerStarted", { timer_id: "1", start_to_fire_timeout: "1s" }),
    ev(6, "WorkflowExecutionSignaled", { signal_name: "approve", input: ["ann"] }),
    ev(7, "WorkflowTaskScheduled"),
    ev(8, "WorkflowTaskStarted"),
  ];
  // The signal arrives before the handler exists: buffered, nothing to do yet.
  assert.deepEqual(await handleWorkflowTask(wf, task(events, "Signals")), { commands: [] });
  const more = [
    ...events,
    ev(9, "WorkflowTaskCompleted"),
    ev(10, "TimerFired", { timer_id: "1" }),
    ev(11, "WorkflowExecutionSignaled", { signal_name: "approve", input: ["bob"] }),
    ev(12, "WorkflowTaskScheduled"),
    ev(13, "WorkflowTaskStarted"),
  ];
  assert.deepEqual(await handleWorkflowTask(wf, task(more, "Signals")), {
    commands: [{ command_type: "CompleteWorkflowExecution", attributes: { result: ["ann", "bob"] } }],
  });
});

test("code that is not workflow code sees the real clock while an activation runs", async () => {
  const events = history("onboarding").events.slice(0, 3);
  const seen: number[] = [];
  const wf = async (): Promise<number> => Date.now();
  // Runs while the activation waits for its promise jobs to settle (its drain is a later tick).
  process.nextTick(() => seen.push(Date.now()));
  const answer = await handleWorkflowTask(wf, task(events));
  assert.ok("commands" in answer);
  assert.equal((answer.commands[0] as CompleteWorkflowExecutionCommand).attributes.result, Date.parse(events[2]!.event_time));
  assert.equal(seen.length, 1);
  assert.ok(Math.abs(seen[0]! - Date.now()) < 5_000, "a foreign callback saw the workflow's time");
});

test("a cancellation request cancels the pending activity and timer (in the order they started); a workflow that lets it propagate is cancelled", async () => {
  const { sleep, proxyActivities, isCancellation } = await import("../src/workflow.js");
  const { charge } = proxyActivities<{ charge(): Promise<string> }>({ startToCloseTimeout: "10s" });
  let caught = false;
  const wf = async (): Promise<string> => {
    const c = charge();
    try {
      await sleep("1h");
    } catch (err) {
      caught = isCancellation(err);
      await c.catch(() => undefined);
      throw err;
    }
    return "slept";
  };
  const t = "2025-01-01T00:00:00.000Z";
  const ev = (id: number, type: string, attributes: Record<string, unknown> = {}): HistoryEvent => ({ event_id: id, event_time: t, event_type: type, attributes });
  const events = [
    ev(1, "WorkflowExecutionStarted", { workflow_type: "Cancellable", task_queue: "q", input: [] }),
    ev(2, "WorkflowTaskScheduled"),
    ev(3, "WorkflowTaskStarted"),
    ev(4, "WorkflowTaskCompleted"),
    ev(5, "ActivityTaskScheduled", { activity_id: "1", activity_type: "charge", input: [] }),
    ev(6, "TimerStarted", { timer_id: "1", start_to_fire_timeout: "3600s" }),
    ev(7, "WorkflowExecutionCancelRequested", { reason: "user asked" }),
    ev(8, "WorkflowTaskScheduled"),
    ev(9, "WorkflowTaskStarted"),
  ];
  const answer = await handleWorkflowTask(wf, task(events, "Cancellable"));
  assert.deepEqual(answer, {
    commands: [
      { command_type: "RequestCancelActivityTask", attributes: { activity_id: "1" } },
      { command_type: "CancelTimer", attributes: { timer_id: "1" } },
      { command_type: "CancelWorkflowExecution", attributes: {} },
    ],
  });
  assert.ok(caught);
});

test("an activity started and never awaited may fail without an unhandled rejection", async () => {
  const { proxyActivities } = await import("../src/workflow.js");
  const { charge } = proxyActivities<{ charge(): Promise<string> }>({ startToCloseTimeout: "10s" });
  const t = "2025-01-01T00:00:00.000Z";
  const ev = (id: number, type: string, attributes: Record<string, unknown> = {}): HistoryEvent => ({ event_id: id, event_time: t, event_type: type, attributes });
  const wf = async (): Promise<string> => {
    void charge();
    const { condition } = await import("../src/workflow.js");
    await condition(() => false);
    return "never";
  };
  const events = [
    ev(1, "WorkflowExecutionStarted", { workflow_type: "W", task_queue: "q", input: [] }),
    ev(2, "WorkflowTaskScheduled"),
    ev(3, "WorkflowTaskStarted"),
    ev(4, "WorkflowTaskCompleted"),
    ev(5, "ActivityTaskScheduled", { activity_id: "1", activity_type: "charge", input: [] }),
    ev(6, "ActivityTaskStarted", { scheduled_event_id: 5 }),
    ev(7, "ActivityTaskFailed", { scheduled_event_id: 5, failure: { message: "boom", type: "Boom" }, retry_state: "MAXIMUM_ATTEMPTS_REACHED" }),
    ev(8, "WorkflowTaskScheduled"),
    ev(9, "WorkflowTaskStarted"),
  ];
  assert.deepEqual(await handleWorkflowTask(wf, task(events, "W")), { commands: [] });
});

test("the replayer seeds randomness from the exported run id", async () => {
  const { executeActivity, uuid4 } = await import("../src/workflow.js");
  // A random activity id: a replay only matches with the run's own seed.
  const wf = async (): Promise<unknown> => executeActivity("step", { startToCloseTimeout: "10s", activityId: uuid4() });
  const runId = "00000000-0000-4000-8000-00000000abcd";
  const t = "2025-01-01T00:00:00.000Z";
  const ev = (id: number, type: string, attributes: Record<string, unknown> = {}): HistoryEvent => ({ event_id: id, event_time: t, event_type: type, attributes });
  const start = [ev(1, "WorkflowExecutionStarted", { workflow_type: "R", task_queue: "q", input: [] }), ev(2, "WorkflowTaskScheduled"), ev(3, "WorkflowTaskStarted")];
  const first = await handleWorkflowTask(wf, { ...task(start, "R"), run_id: runId });
  assert.ok("commands" in first);
  const rest = [
    ev(4, "WorkflowTaskCompleted"),
    { ...ev(5, "ActivityTaskScheduled"), attributes: first.commands[0]!.attributes },
    ev(6, "ActivityTaskStarted", { scheduled_event_id: 5 }),
    ev(7, "ActivityTaskCompleted", { scheduled_event_id: 5, result: "ok" }),
    ev(8, "WorkflowTaskScheduled"),
    ev(9, "WorkflowTaskStarted"),
  ];
  const done = await handleWorkflowTask(wf, { ...task([...start, ...rest], "R"), run_id: runId });
  assert.ok("commands" in done);
  const completed = [...start, ...rest, ev(10, "WorkflowTaskCompleted"), { ...ev(11, "WorkflowExecutionCompleted"), attributes: done.commands[0]!.attributes }];
  await new Replayer({ R: wf }).replay({ run_id: runId, events: completed });
  await assert.rejects(new Replayer({ R: wf }).replay({ run_id: "another-run", events: completed }), NonDeterminismError);
});

test("an activation waits for every promise job: long chains of plain awaits before a command", async () => {
  const { sleep, executeActivity } = await import("../src/workflow.js");
  const deep = async (n: number): Promise<number> => {
    for (let i = 0; i < n; i++) await Promise.resolve();
    return n;
  };
  const wf = async (): Promise<void> => {
    await Promise.all([deep(2_000), deep(500).then(() => deep(500))]);
    void executeActivity("step", { startToCloseTimeout: "10s" });
    await deep(1_000);
    await sleep("1s");
  };
  const events = history("onboarding").events.slice(0, 3);
  assert.deepEqual(await handleWorkflowTask(wf, task(events)), {
    commands: [
      { command_type: "ScheduleActivityTask", attributes: { activity_id: "1", activity_type: "step", input: [], start_to_close_timeout: "10s" } },
      { command_type: "StartTimer", attributes: { timer_id: "1", start_to_fire_timeout: "1s" } },
    ],
  });
});

test("continueAsNew closes the run with ContinueAsNewWorkflowExecution, after the task's other commands", async () => {
  const { continueAsNew, makeContinueAsNewFunc, executeActivity, workflowInfo } = await import("../src/workflow.js");
  const t = "2025-01-01T00:00:00.000Z";
  const events: HistoryEvent[] = [
    { event_id: 1, event_time: t, event_type: "WorkflowExecutionStarted", attributes: { workflow_type: "Counter", task_queue: "q", input: [1] } },
    { event_id: 2, event_time: t, event_type: "WorkflowTaskScheduled", attributes: {} },
    { event_id: 3, event_time: t, event_type: "WorkflowTaskStarted", attributes: {} },
  ];
  const same = async (n: number): Promise<void> => {
    void executeActivity("audit", { startToCloseTimeout: "10s" }, n);
    await continueAsNew<typeof same>(n + 1);
  };
  assert.deepEqual(await handleWorkflowTask(same, task(events)), {
    commands: [
      { command_type: "ScheduleActivityTask", attributes: { activity_id: "1", activity_type: "audit", input: [1], start_to_close_timeout: "10s" } },
      { command_type: "ContinueAsNewWorkflowExecution", attributes: { input: [2] } },
    ],
  });
  const moved = async (): Promise<void> => {
    assert.equal(workflowInfo().firstExecutionRunId, "00000000-0000-4000-8000-000000000009");
    await makeContinueAsNewFunc<typeof moved>({ taskQueue: "v2", workflowRunTimeout: "1h", memo: { tier: "gold" } })();
  };
  assert.deepEqual(await handleWorkflowTask(moved, task(events)), {
    commands: [{ command_type: "ContinueAsNewWorkflowExecution", attributes: { input: [], task_queue: "v2", workflow_run_timeout: "3600s", memo: { tier: "gold" } } }],
  });
});
