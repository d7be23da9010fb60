/**
 * Local activities end to end against `baton dev` (protocol.md §14.6): the
 * handler runs them inside the workflow task and records LocalActivity
 * markers. Success, in-process retries, failure after retries, a back-off
 * on a durable timer, a long one across workflow-task heartbeats,
 * cancellation, many runs at once; and the pushes three local activities
 * cost against three ordinary ones. Mirrors sdk-py/tests/test_local_activities.py.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Context } from "../src/activity.js";
import type { HistoryEvent } from "../src/common.js";
import { createHandler } from "../src/index.js";
import { Replayer, type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { ActivityFailure, CancellationScope, proxyActivities, proxyLocalActivities } from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const QUEUE = "ts-local";
const attempts = new Map<string, number>();
const cancelled: string[] = [];

function count(name: string): number {
  const k = `${Context.current().info.workflowExecution.workflowId}/${name}`;
  const n = (attempts.get(k) ?? 0) + 1;
  attempts.set(k, n);
  return n;
}

const activities = {
  async addOne(n: number): Promise<number> {
    count("addOne");
    return n + 1;
  },
  async flaky(fails: number): Promise<string> {
    const n = count("flaky");
    if (n <= fails) {
      const err = new Error(`attempt ${n} failed`);
      err.name = "ConnectionError";
      throw err;
    }
    return `ok after ${n} attempts`;
  },
  async slow(ms: number): Promise<string> {
    count("slow");
    const ctx = Context.current();
    try {
      await ctx.sleep(ms);
    } catch (err) {
      cancelled.push(ctx.info.workflowExecution.workflowId);
      throw err;
    }
    return `slept ${ms}`;
  },
};

const local = proxyLocalActivities<typeof activities>({ startToCloseTimeout: "5s" });
const plain = proxyActivities<typeof activities>({ startToCloseTimeout: "5s" });

async function ThreeLocalSteps(n: number): Promise<number> {
  for (let i = 0; i < 3; i++) n = await local.addOne(n);
  return n;
}

async function ThreeSteps(n: number): Promise<number> {
  for (let i = 0; i < 3; i++) n = await plain.addOne(n);
  return n;
}

async function FlakyLocal(fails: number, maximumAttempts: number, initialMs: number, thresholdMs: number): Promise<unknown> {
  const { flaky } = proxyLocalActivities<typeof activities>({
    startToCloseTimeout: "5s",
    retry: { initialInterval: initialMs, maximumAttempts },
    localRetryThreshold: thresholdMs,
  });
  try {
    return await flaky(fails);
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    return { error: err.name, retryState: err.retryState, cause: err.cause?.name, message: err.cause?.message };
  }
}

async function LongLocal(ms: number): Promise<string> {
  const { slow } = proxyLocalActivities<typeof activities>({ startToCloseTimeout: "30s" });
  return slow(ms);
}

async function CancelLocal(): Promise<string[]> {
  const { slow } = proxyLocalActivities<typeof activities>({ startToCloseTimeout: "60s" });
  const scope = new CancellationScope();
  const long = scope.run(() => slow(30_000));
  const quick = await slow(10);
  scope.cancel();
  try {
    await long;
    return [quick, "not cancelled"];
  } catch (err) {
    return [quick, err instanceof ActivityFailure ? String(err.cause?.name) : String(err)];
  }
}

const workflows = { ThreeLocalSteps, ThreeSteps, FlakyLocal, LongLocal, CancelLocal };

type Attrs = Record<string, any>;
const types = (events: HistoryEvent[]): string[] => events.map((e) => e.event_type);
const markers = (events: HistoryEvent[]): Attrs[] =>
  events.filter((e) => e.event_type === "MarkerRecorded" && (e.attributes as Attrs).marker_name === "LocalActivity").map((e) => e.attributes as Attrs);
const countOf = (events: HistoryEvent[], t: string): number => types(events).filter((x) => x === t).length;

describe("local activities against baton dev", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  let served: ServedHandler;
  const replayer = new Replayer(workflows);

  before(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping();
    served = await serveHandler(createHandler({ workflows, activities, signingSecret: SECRET }));
    await env.registerEndpoint(QUEUE, served.url, SECRET);
  });

  after(async () => {
    await served?.close();
    await env?.teardown();
  });

  async function history(workflowId: string): Promise<HistoryEvent[]> {
    const h = await env.client.workflow.getHandle(workflowId).fetchHistory();
    return h.events;
  }

  test("three local activities take one workflow task; three activities take seven pushes", async () => {
    assert.equal(await env.client.workflow.execute(ThreeLocalSteps, { workflowId: "ts-three-local", taskQueue: QUEUE, args: [1] }), 4);
    assert.equal(await env.client.workflow.execute(ThreeSteps, { workflowId: "ts-three-plain", taskQueue: QUEUE, args: [1] }), 4);
    const lh = await history("ts-three-local");
    const ph = await history("ts-three-plain");
    assert.deepEqual(
      markers(lh).map((m) => [m.details.activity_id, m.details.result, m.details.attempt]),
      [
        ["1", 2, 1],
        ["2", 3, 1],
        ["3", 4, 1],
      ],
    );
    const pushes = (h: HistoryEvent[]) => countOf(h, "WorkflowTaskStarted") + countOf(h, "ActivityTaskStarted");
    const commits = (h: HistoryEvent[]) => 1 + countOf(h, "WorkflowTaskCompleted") + countOf(h, "ActivityTaskCompleted");
    console.log(
      `3 steps: local activities ${pushes(lh)} pushes / ${commits(lh)} commits / ${lh.length} events; ` +
        `activities ${pushes(ph)} pushes / ${commits(ph)} commits / ${ph.length} events`,
    );
    assert.equal(pushes(lh), 1);
    assert.equal(pushes(ph), 7);
    assert.ok(commits(lh) < commits(ph));
    assert.equal(attempts.get("ts-three-local/addOne"), 3);
    await replayer.replay(lh);
  });

  test("retried in-process, then a success", async () => {
    const r = await env.client.workflow.execute(FlakyLocal, { workflowId: "ts-flaky-local", taskQueue: QUEUE, args: [2, 0, 10, 60_000] });
    assert.equal(r, "ok after 3 attempts");
    const h = await history("ts-flaky-local");
    const [m] = markers(h);
    assert.equal(m?.details.attempt, 3);
    assert.equal(countOf(h, "WorkflowTaskStarted"), 1);
    await replayer.replay(h);
  });

  test("a failure after the retries is an ActivityFailure", async () => {
    const r = await env.client.workflow.execute(FlakyLocal, { workflowId: "ts-failing-local", taskQueue: QUEUE, args: [99, 3, 10, 60_000] });
    assert.deepEqual(r, { error: "ActivityFailure", retryState: "MAXIMUM_ATTEMPTS_REACHED", cause: "ApplicationFailure", message: "attempt 3 failed" });
    assert.equal(attempts.get("ts-failing-local/flaky"), 3);
    const h = await history("ts-failing-local");
    const [m] = markers(h);
    assert.equal(m?.failure.type, "ConnectionError");
    assert.equal(m?.details.retry_state, "MAXIMUM_ATTEMPTS_REACHED");
    await replayer.replay(h);
  });

  test("a back-off beyond the threshold waits on a durable timer", async () => {
    const r = await env.client.workflow.execute(FlakyLocal, { workflowId: "ts-backoff-local", taskQueue: QUEUE, args: [1, 0, 2000, 500] });
    assert.equal(r, "ok after 2 attempts");
    const h = await history("ts-backoff-local");
    const [first, second] = markers(h);
    assert.equal(first?.details.attempt, 1);
    assert.equal(first?.details.backoff, "2s");
    assert.equal(first?.failure.message, "attempt 1 failed");
    assert.equal(second?.details.attempt, 2);
    assert.equal(second?.details.original_schedule_time, first?.details.original_schedule_time);
    const t = types(h);
    assert.ok(t.indexOf("TimerStarted") >= 0 && t.indexOf("TimerStarted") < t.indexOf("TimerFired"));
    assert.equal(countOf(h, "WorkflowTaskStarted"), 2);
    await replayer.replay(h);
  });

  test("a long local activity heartbeats the workflow task", async () => {
    const handle = await env.client.workflow.start(LongLocal, { workflowId: "ts-long-local", taskQueue: QUEUE, args: [2500], workflowTaskTimeout: "1s" });
    assert.equal(await handle.result(), "slept 2500");
    const h = await history("ts-long-local");
    assert.equal(countOf(h, "WorkflowTaskTimedOut") + countOf(h, "WorkflowTaskFailed"), 0);
    assert.ok(countOf(h, "WorkflowTaskCompleted") >= 3, types(h).join(", "));
    assert.equal(attempts.get("ts-long-local/slow"), 1);
    await replayer.replay(h);
  });

  test("cancelling a started local activity", async () => {
    const r = await env.client.workflow.execute(CancelLocal, { workflowId: "ts-cancel-local", taskQueue: QUEUE, args: [] });
    assert.deepEqual(r, ["slept 10", "CancelledFailure"]);
    const h = await history("ts-cancel-local");
    const [quick, long] = markers(h);
    assert.equal(quick?.details.activity_id, "2");
    assert.equal(long?.details.activity_id, "1");
    assert.equal(long?.failure.kind, "CANCELED");
    for (let i = 0; i < 100 && !cancelled.includes("ts-cancel-local"); i++) await new Promise((res) => setTimeout(res, 10));
    assert.ok(cancelled.includes("ts-cancel-local"));
    await replayer.replay(h);
  });

  test("many runs with local activities at once", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => env.client.workflow.execute(ThreeLocalSteps, { workflowId: `ts-many-local-${i}`, taskQueue: QUEUE, args: [i] })),
    );
    assert.deepEqual(
      results,
      Array.from({ length: 20 }, (_, i) => i + 3),
    );
  });
});
