/**
 * Inline activities end to end against `baton dev` (protocol.md §5.9): the
 * handler runs the activities it serves inside the workflow task and
 * checkpoints each step. Pushes are counted at the handler: three steps
 * take one workflow task push; a signal during a step, a failing attempt
 * (retried as a pushed activity), the per-call and per-app opt-outs, a small
 * task budget (inlining stops, every push answered in time) and many runs at
 * once under the handler's bound on inline attempts. Every history replays.
 * Mirrors sdk-py/tests/test_inline_activities.py.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Context } from "../src/activity.js";
import type { Client } from "../src/client.js";
import type { HistoryEvent } from "../src/common.js";
import { type FetchHandler, type HandlerOptions, createHandler } from "../src/index.js";
import { Replayer, type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { condition, defineSignal, proxyActivities, setHandler } from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const QUEUE = "ts-inline";
const OFF_QUEUE = "ts-inline-off";

let client: Client | undefined;
const attempts = new Map<string, number>();
let runningNow = 0;
let mostAtOnce = 0;

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
  async slowAdd(n: number, ms: number): Promise<number> {
    const inline = Context.current().info.isInline;
    if (inline) mostAtOnce = Math.max(mostAtOnce, ++runningNow);
    try {
      await Context.current().sleep(ms);
    } finally {
      if (inline) runningNow--;
    }
    return n + 1;
  },
  async failOnce(n: number): Promise<number> {
    if (count("failOnce") === 1) throw new Error("the first attempt fails");
    return n + 1;
  },
  async signalSelf(n: number): Promise<number> {
    const info = Context.current().info;
    await client!.workflow.getHandle(info.workflowExecution.workflowId).signal("poke", "from the activity");
    return n + 1;
  },
  async whereAmI(): Promise<{ attempt: number; token: boolean; local: boolean; inline: boolean }> {
    const info = Context.current().info;
    return { attempt: info.attempt, token: info.taskToken !== "", local: info.isLocal, inline: info.isInline };
  },
};

const steps = proxyActivities<typeof activities>({ startToCloseTimeout: "10s", retry: { initialInterval: "100ms", maximumAttempts: 5 } });
const pushedSteps = proxyActivities<typeof activities>({ startToCloseTimeout: "10s", inline: false });

/** Three steps; returns the results and workflow.now() after each. */
async function ThreeInline(n: number): Promise<{ n: number; times: number[]; info: unknown }> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    n = await steps.addOne(n);
    times.push(Date.now());
  }
  return { n, times, info: await steps.whereAmI() };
}

async function ThreePushed(n: number): Promise<number> {
  for (let i = 0; i < 3; i++) n = await pushedSteps.addOne(n);
  return n;
}

async function SlowSteps(n: number, ms: number): Promise<number> {
  for (let i = 0; i < 3; i++) n = await steps.slowAdd(n, ms);
  return n;
}

async function Retried(n: number): Promise<number> {
  n = await steps.addOne(n);
  n = await steps.failOnce(n);
  return steps.addOne(n);
}

const poke = defineSignal<[string]>("poke");

async function Signalled(n: number): Promise<{ n: number; got: string[] }> {
  const got: string[] = [];
  setHandler(poke, (s) => void got.push(s));
  n = await steps.addOne(n);
  n = await steps.signalSelf(n);
  await condition(() => got.length > 0);
  n = await steps.addOne(n);
  return { n, got };
}

const workflows = { ThreeInline, ThreePushed, SlowSteps, Retried, Signalled };

interface Push {
  type: string;
  workflowId: string;
  deadline?: string;
  answeredMs: number;
  answer: unknown;
}

/** Serves `handler`, keeping every push it gets and how it answered. */
async function serveCounting(handler: FetchHandler, pushes: Push[]): Promise<ServedHandler> {
  return serveHandler(async (req) => {
    if (req.method !== "POST") return handler(req);
    const body = (await req.clone().json()) as { type: string; workflow_id: string; deadline?: string };
    // Kept on arrival: a session's last checkpoint may close the run before the push is answered.
    const push: Push = { type: body.type, workflowId: body.workflow_id, ...(body.deadline !== undefined ? { deadline: body.deadline } : {}), answeredMs: Infinity, answer: undefined };
    pushes.push(push);
    const resp = await handler(req);
    push.answer = resp.status === 200 ? await resp.clone().json() : resp.status;
    push.answeredMs = Date.now();
    return resp;
  });
}

type Attrs = Record<string, any>;
const countOf = (events: HistoryEvent[], t: string): number => events.filter((e) => e.event_type === t).length;
const inlineFlags = (events: HistoryEvent[]): boolean[] => events.filter((e) => e.event_type === "ActivityTaskScheduled").map((e) => (e.attributes as Attrs).inline === true);

describe("inline activities against baton dev", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  let served: ServedHandler;
  let servedOff: ServedHandler;
  const pushes: Push[] = [];
  const offPushes: Push[] = [];
  const replayer = new Replayer(workflows);

  before(async () => {
    env = await TestWorkflowEnvironment.createLocal();
    client = env.client;
    // A bound below the fifty runs at once of the last test, so that it binds.
    const options: HandlerOptions = { workflows, activities, signingSecret: SECRET, serverUrl: env.address, maxInlineAttempts: 16 };
    served = await serveCounting(createHandler(options), pushes);
    servedOff = await serveCounting(createHandler({ ...options, inlineActivities: false }), offPushes);
    await env.registerEndpoint(QUEUE, served.url, SECRET);
    await env.registerEndpoint(OFF_QUEUE, servedOff.url, SECRET);
  });

  after(async () => {
    await served?.close();
    await servedOff?.close();
    await env?.teardown();
  });

  async function history(workflowId: string): Promise<HistoryEvent[]> {
    return (await env.client.workflow.getHandle(workflowId).fetchHistory()).events;
  }
  const pushesOf = (list: Push[], workflowId: string, type: string): Push[] => list.filter((p) => p.workflowId === workflowId && p.type === type);

  test("three steps take one workflow task push; workflow.now() is each checkpoint's workflow_time; the history replays", async () => {
    const r = (await env.client.workflow.execute(ThreeInline, { workflowId: "ts-inline-three", taskQueue: QUEUE, args: [1] })) as Awaited<ReturnType<typeof ThreeInline>>;
    assert.equal(r.n, 4);
    assert.deepEqual(r.info, { attempt: 1, token: true, local: false, inline: true });
    const wt = pushesOf(pushes, "ts-inline-three", "workflow_task");
    assert.equal(wt.length, 1);
    for (let i = 0; i < 100 && wt[0]?.answer === undefined; i++) await new Promise((res) => setTimeout(res, 10));
    assert.deepEqual(wt[0]?.answer, { checkpointed: true });
    assert.equal(pushesOf(pushes, "ts-inline-three", "activity_task").length, 0);
    const h = await history("ts-inline-three");
    assert.deepEqual(inlineFlags(h), [true, true, true, true]);
    assert.equal(countOf(h, "ActivityTaskCompleted"), 4);
    assert.equal(countOf(h, "WorkflowTaskCompleted"), 5);
    assert.equal(countOf(h, "WorkflowTaskFailed") + countOf(h, "WorkflowTaskTimedOut"), 0);
    // The code after each result ran at its speculative task's WorkflowTaskStarted.
    const started = h.filter((e) => e.event_type === "WorkflowTaskStarted").map((e) => Date.parse(e.event_time));
    assert.deepEqual(r.times, started.slice(1, 4));
    for (let i = 1; i < h.length; i++) assert.equal(h[i]!.event_id, h[i - 1]!.event_id + 1);
    assert.equal(attempts.get("ts-inline-three/addOne"), 3);
    await replayer.replay({ events: h, workflow_id: "ts-inline-three" });
  });

  test("a signal during an inline step ends the session; the pushed task sees it", async () => {
    const r = await env.client.workflow.execute(Signalled, { workflowId: "ts-inline-signal", taskQueue: QUEUE, args: [1] });
    assert.deepEqual(r, { n: 4, got: ["from the activity"] });
    const h = await history("ts-inline-signal");
    assert.equal(countOf(h, "WorkflowExecutionSignaled"), 1);
    assert.ok(pushesOf(pushes, "ts-inline-signal", "workflow_task").length >= 2);
    assert.deepEqual(inlineFlags(h), [true, true, true]);
    await replayer.replay({ events: h, workflow_id: "ts-inline-signal" });
  });

  test("a failing inline attempt is retried as a pushed activity", async () => {
    const r = await env.client.workflow.execute(Retried, { workflowId: "ts-inline-retry", taskQueue: QUEUE, args: [1] });
    assert.equal(r, 4);
    assert.equal(attempts.get("ts-inline-retry/failOnce"), 2);
    const retried = pushesOf(pushes, "ts-inline-retry", "activity_task");
    assert.equal(retried.length, 1);
    const h = await history("ts-inline-retry");
    assert.deepEqual(inlineFlags(h), [true, true, true]);
    const failOnce = h.find((e) => e.event_type === "ActivityTaskScheduled" && (e.attributes as Attrs).activity_type === "failOnce")!;
    const closedBy = h.filter((e) => e.event_type === "ActivityTaskStarted" && (e.attributes as Attrs).scheduled_event_id === failOnce.event_id);
    assert.deepEqual(closedBy.map((e) => (e.attributes as Attrs).attempt), [2]);
    assert.equal(countOf(h, "ActivityTaskFailed"), 0);
    await replayer.replay({ events: h, workflow_id: "ts-inline-retry" });
  });

  test("inline: false per call, and inlineActivities: false per handler, push every activity", async () => {
    assert.equal(await env.client.workflow.execute(ThreePushed, { workflowId: "ts-inline-optout-call", taskQueue: QUEUE, args: [1] }), 4);
    assert.equal(await env.client.workflow.execute(ThreeInline, { workflowId: "ts-inline-optout-app", taskQueue: OFF_QUEUE, args: [1] }).then((r) => (r as { n: number }).n), 4);
    for (const [list, wid, activityPushes] of [
      [pushes, "ts-inline-optout-call", 3],
      [offPushes, "ts-inline-optout-app", 4],
    ] as const) {
      assert.equal(pushesOf(list, wid, "activity_task").length, activityPushes, wid);
      assert.equal(pushesOf(list, wid, "workflow_task").length, activityPushes + 1, wid);
      assert.ok(pushesOf(list, wid, "workflow_task").every((p) => (p.answer as Attrs).checkpointed === undefined), wid);
      const h = await history(wid);
      assert.deepEqual(inlineFlags(h), Array.from({ length: activityPushes }, () => false), wid);
      await replayer.replay({ events: h, workflow_id: wid });
    }
  });

  test("a small task budget stops inlining in time: every push is answered before its deadline", async () => {
    const handle = await env.client.workflow.start(SlowSteps, { workflowId: "ts-inline-deadline", taskQueue: QUEUE, args: [1, 1500], workflowTaskTimeout: "2s" });
    assert.equal(await handle.result(), 4);
    const wt = pushesOf(pushes, "ts-inline-deadline", "workflow_task");
    // Each 1.5 s step outlives the 1 s left before the 2 s deadline: the session ends, the step is reported on its own.
    assert.equal(wt.length, 4);
    for (const p of wt) {
      assert.ok(p.deadline !== undefined);
      assert.ok(p.answeredMs < Date.parse(p.deadline), `answered ${p.answeredMs - Date.parse(p.deadline)} ms after the deadline`);
    }
    const h = await history("ts-inline-deadline");
    assert.equal(countOf(h, "WorkflowTaskTimedOut") + countOf(h, "ActivityTaskTimedOut"), 0);
    assert.deepEqual(inlineFlags(h), [true, true, true]);
    assert.equal(pushesOf(pushes, "ts-inline-deadline", "activity_task").length, 0);
    await replayer.replay({ events: h, workflow_id: "ts-inline-deadline" });
  });

  test("fifty runs at once, three inline steps each, at most 16 inline attempts at a time", async () => {
    mostAtOnce = 0;
    const ids = Array.from({ length: 50 }, (_, i) => `ts-inline-many-${i}`);
    const results = await Promise.all(ids.map((workflowId, i) => env.client.workflow.execute(SlowSteps, { workflowId, taskQueue: QUEUE, args: [i, 50] })));
    assert.deepEqual(
      results,
      ids.map((_, i) => i + 3),
    );
    assert.ok(mostAtOnce <= 16, `${mostAtOnce} inline attempts ran at once`);
    let inlined = 0;
    for (const wid of ids) {
      const h = await history(wid);
      assert.equal(countOf(h, "ActivityTaskCompleted"), 3, wid);
      assert.equal(countOf(h, "WorkflowTaskFailed") + countOf(h, "WorkflowTaskTimedOut"), 0, wid);
      inlined += inlineFlags(h).filter(Boolean).length;
      await replayer.replay({ events: h, workflow_id: wid });
    }
    // Beyond the bound an activity is pushed; the first 16 at least ran inline.
    assert.ok(inlined >= 16, `${inlined} of 150 steps inline`);
  });
});
