/** End to end against the real server (`baton dev --time-skipping`), activities and workflows served on loopback. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CompleteAsyncError, Context } from "../src/activity.js";
import {
  QueryNotRegisteredError,
  ServiceError,
  WorkflowUpdateFailedError,
  WorkflowUpdateStage,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowQueryFailedError,
} from "../src/client.js";
import { ActivityFailure, ApplicationFailure } from "../src/common.js";
import { createHandler } from "../src/index.js";
import { Replayer, type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import {
  ActivityCancellationType,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  proxyActivities,
  setHandler,
  sleep,
  workflowInfo,
} from "../src/workflow.js";
import { ShoppingCart, addItem, cartActivities, checkout } from "./cart.js";
import { SKIP_WITHOUT_BINARY, until } from "./e2e_helpers.js";
import { Onboarding, onboardingActivities } from "./onboarding.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const QUEUE = "ts-e2e";


const calls = { flaky: 0, declined: 0, cleanup: 0 };
/** How each `patient` activity ended, by workflow id. */
const patientEnds = new Map<string, string>();
const patientRunning = new Set<string>();
let approvalToken: string | undefined;

const activities = {
  ...onboardingActivities,
  async flaky(): Promise<string> {
    calls.flaky++;
    const { attempt } = Context.current().info;
    if (attempt < 3) throw new Error(`transient failure on attempt ${attempt}`);
    return `ok on attempt ${attempt}`;
  },
  async declined(): Promise<string> {
    calls.declined++;
    throw ApplicationFailure.nonRetryable("card declined", "CardDeclined", { code: 51 });
  },
  async approval(request: string): Promise<string> {
    approvalToken = Context.current().info.taskToken;
    void request;
    throw new CompleteAsyncError();
  },
  async resumable(): Promise<unknown> {
    const ctx = Context.current();
    if (ctx.info.attempt === 1) {
      ctx.heartbeat({ done: 7 });
      throw new Error("crashed after heartbeating");
    }
    return { attempt: ctx.info.attempt, resumedFrom: ctx.info.heartbeatDetails };
  },
  /** Heartbeats until the workflow cancels it (or its attempt is over). */
  async patient(): Promise<string> {
    const ctx = Context.current();
    const wid = ctx.info.workflowExecution.workflowId;
    patientRunning.add(wid);
    try {
      for (;;) {
        ctx.heartbeat();
        await ctx.sleep(50);
      }
    } catch (err) {
      patientEnds.set(wid, ctx.cancellationRequested ? "cancel requested" : "attempt over");
      throw err;
    }
  },
  async cleanup(): Promise<string> {
    calls.cleanup++;
    return "cleaned up";
  },
  ...cartActivities,
  async increment(n: number): Promise<number> {
    return n + 1;
  },
};

const retrying = proxyActivities<typeof activities>({
  startToCloseTimeout: "10s",
  retry: { initialInterval: "100ms", backoffCoefficient: 1, maximumAttempts: 5 },
});

async function Retries(): Promise<unknown> {
  const first = await retrying.flaky();
  try {
    await retrying.declined();
    return "unreachable";
  } catch (err) {
    assert.ok(err instanceof ActivityFailure);
    const cause = err.cause as ApplicationFailure;
    return { first, type: cause.type, nonRetryable: cause.nonRetryable, details: cause.details, retryState: err.retryState };
  }
}

async function Approval(request: string): Promise<string> {
  return `${request}: ${await retrying.approval(request)}`;
}

async function Resume(): Promise<unknown> {
  return retrying.resumable();
}

async function Fails(): Promise<never> {
  throw ApplicationFailure.create({ message: "order rejected", type: "Rejected", nonRetryable: true });
}

const approveSignal = defineSignal<[string]>("approve");

async function PurchaseOrder(): Promise<string> {
  let approver: string | undefined;
  setHandler(approveSignal, (who: string) => {
    approver = who;
  });
  const approved = await condition(() => approver !== undefined, "1 day");
  return approved ? `approved by ${approver}` : "timed out";
}

const statusQuery = defineQuery<string, [string?]>("status");
const brokenQuery = defineQuery<string>("broken");

async function Approvable(): Promise<string> {
  let approver: string | undefined;
  setHandler(approveSignal, (who: string) => {
    approver = who;
  });
  setHandler(statusQuery, (prefix?: string) => `${prefix ?? ""}${approver === undefined ? "waiting" : `approved by ${approver}`}`);
  setHandler(brokenQuery, () => {
    throw new Error("no status for you");
  });
  await condition(() => approver !== undefined);
  return `approved by ${approver}`;
}

async function Nap(): Promise<string> {
  await sleep("1 day");
  return "rested";
}

const stopSignal = defineSignal("stop");

/** Runs `patient` in a scope and cancels the scope when signalled. */
async function CancelPatient(type: keyof typeof ActivityCancellationType): Promise<string> {
  const { patient } = proxyActivities<typeof activities>({
    startToCloseTimeout: "1m",
    heartbeatTimeout: "4s",
    cancellationType: ActivityCancellationType[type],
  });
  let stop = false;
  setHandler(stopSignal, () => {
    stop = true;
  });
  const scope = new CancellationScope();
  const running = scope.run(() => patient());
  await condition(() => stop);
  scope.cancel();
  return running.then(
    () => "completed",
    (err: unknown) => (isCancellation(err) ? "cancelled" : `failed: ${String(err)}`),
  );
}

/** An activity that never answers (202), given a day. */
async function Deadline(): Promise<string> {
  try {
    return await CancellationScope.withTimeout("1 day", () => retrying.approval("never"));
  } catch (err) {
    if (isCancellation(err)) return "gave up after a day";
    throw err;
  }
}

/** A cleanup activity that runs even though the workflow was cancelled. */
async function CleanNap(): Promise<string> {
  try {
    await sleep("1 day");
    return "rested";
  } catch (err) {
    if (isCancellation(err)) await CancellationScope.nonCancellable(() => retrying.cleanup());
    throw err;
  }
}

/** Counts to `target`, continuing as new every 3 iterations; returns the count and how many runs the chain took. */
async function Counter(count: number, target: number, runs: number): Promise<{ count: number; runs: number; firstRunId: string }> {
  for (let i = 0; i < 3 && count < target; i++) count = await retrying.increment(count);
  if (count < target) await continueAsNew<typeof Counter>(count, target, runs + 1);
  return { count, runs, firstRunId: workflowInfo().firstExecutionRunId };
}

const workflows = { Counter, ShoppingCart, Onboarding, Retries, Approval, Resume, Fails, PurchaseOrder, Approvable, Nap, CancelPatient, Deadline, CleanNap };


describe("end to end against baton dev", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  let served: ServedHandler;

  before(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping();
    const handler = createHandler({ workflows, activities, signingSecret: SECRET, serverUrl: env.address });
    served = await serveHandler(handler);
    await env.registerEndpoint(QUEUE, served.url, SECRET);
  });

  after(async () => {
    await served?.close();
    await env?.teardown();
  });

  test("sequential and parallel activities and a 7-day sleep completed by time skipping; history replays", async () => {
    const { client } = env;
    const user = { id: "u7", email: "u7@example.com", plan: "pro" };
    const handle = await client.workflow.start(Onboarding, { workflowId: "ts-onboarding", taskQueue: QUEUE, args: [user] });
    await until("the 7-day timer", async () => {
      const d = await handle.describe();
      const timers = d.pending.pending_timers as unknown[];
      return timers.length > 0 ? true : undefined;
    });
    await env.skipTime("7 days");
    assert.deepEqual(await handle.result(), {
      account: "acct-u7",
      steps: ["acct-u7", "welcome:u7@example.com", "workspace:acct-u7", "checked-in:acct-u7"],
    });
    const d = await handle.describe();
    assert.equal(d.status.name, "COMPLETED");
    const history = await handle.fetchHistory();
    assert.equal(history.events.at(-1)?.event_type, "WorkflowExecutionCompleted");
    assert.equal(history.run_id, handle.firstExecutionRunId);
    await new Replayer(workflows).replay(history);
    await assert.rejects(
      client.workflow.start(Onboarding, { workflowId: "ts-onboarding", taskQueue: QUEUE, args: [user], workflowIdReusePolicy: "REJECT_DUPLICATE" }),
      WorkflowExecutionAlreadyStartedError,
    );
    const listed = [];
    for await (const e of client.workflow.list({ query: { workflow_type: "Onboarding" } })) listed.push(e.workflowId);
    assert.ok(listed.includes("ts-onboarding"));
  });

  test("retries, then a non-retryable ApplicationFailure that is not retried", async () => {
    const result = await env.client.workflow.execute(Retries, { workflowId: "ts-retries", taskQueue: QUEUE });
    assert.deepEqual(result, {
      first: "ok on attempt 3",
      type: "CardDeclined",
      nonRetryable: true,
      details: [{ code: 51 }],
      retryState: "NON_RETRYABLE_FAILURE",
    });
    assert.equal(calls.flaky, 3);
    assert.equal(calls.declined, 1);
  });

  test("asynchronous completion through the client", async () => {
    const handle = await env.client.workflow.start(Approval, { workflowId: "ts-approval", taskQueue: QUEUE, args: ["expense-9"] });
    const token = await until("the task token", async () => approvalToken);
    assert.deepEqual(await env.client.activity.heartbeat(token, { step: 1 }), { cancelRequested: false });
    await env.client.activity.complete(token, "approved");
    assert.equal(await handle.result(), "expense-9: approved");
  });

  test("heartbeat details reach the next attempt", async () => {
    const result = await env.client.workflow.execute(Resume, { workflowId: "ts-resume", taskQueue: QUEUE });
    assert.deepEqual(result, { attempt: 2, resumedFrom: { done: 7 } });
  });

  test("a signal satisfies a condition; without it the condition times out (time skipping)", async () => {
    const waitForTimer = async (h: { describe(): Promise<{ pending: Record<string, unknown> }> }): Promise<void> => {
      await until("the condition's timer", async () => ((await h.describe()).pending.pending_timers as unknown[]).length > 0 || undefined);
    };
    const signalled = await env.client.workflow.start(PurchaseOrder, { workflowId: "ts-po-1", taskQueue: QUEUE });
    await waitForTimer(signalled);
    await signalled.signal(approveSignal, "ann");
    assert.equal(await signalled.result(), "approved by ann");
    const ignored = await env.client.workflow.start(PurchaseOrder, { workflowId: "ts-po-2", taskQueue: QUEUE });
    await waitForTimer(ignored);
    await env.skipTime("1 day");
    assert.equal(await ignored.result(), "timed out");
  });

  test("a status query before and after the approve signal and after completion; queries leave the history alone", async () => {
    const handle = await env.client.workflow.start(Approvable, { workflowId: "ts-query", taskQueue: QUEUE });
    const historyLength = async (): Promise<number> => (await handle.fetchHistory()).events.length;
    await until("the first workflow task", async () => ((await historyLength()) >= 4 ? true : undefined));
    const before = await historyLength();
    assert.equal(await handle.query(statusQuery), "waiting");
    assert.equal(await handle.query("status", "po: "), "po: waiting");
    assert.equal(await historyLength(), before);

    const unknown = await handle.query("nope").then(
      () => assert.fail("an unknown query should fail"),
      (e: unknown) => e,
    );
    assert.ok(unknown instanceof QueryNotRegisteredError, String(unknown));
    assert.ok(unknown instanceof WorkflowQueryFailedError);
    assert.equal(unknown.queryName, "nope");
    assert.match(unknown.message, /Registered queries: \[broken status\]/);
    const broken = await handle.query(brokenQuery).then(
      () => assert.fail("a throwing query handler should fail"),
      (e: unknown) => e,
    );
    assert.ok(broken instanceof WorkflowQueryFailedError, String(broken));
    assert.ok(!(broken instanceof QueryNotRegisteredError));
    assert.match(broken.message, /no status for you/);
    assert.equal(await historyLength(), before);

    await handle.signal(approveSignal, "ann");
    assert.equal(await handle.query(statusQuery), "approved by ann");
    assert.equal(await handle.result(), "approved by ann");
    const closed = await historyLength();
    assert.equal(await handle.query(statusQuery), "approved by ann");
    assert.equal(await env.client.workflow.getHandle("ts-query").query(statusQuery, "done: "), "done: approved by ann");
    assert.equal(await historyLength(), closed);
    assert.equal((await handle.fetchHistory()).events.at(-1)?.event_type, "WorkflowExecutionCompleted");

    await assert.rejects(env.client.workflow.getHandle("ts-no-such-workflow").query(statusQuery), WorkflowNotFoundError);
    // No endpoint serves the run's queue: 503, the client's generic ServiceError.
    const orphan = await env.client.workflow.start(Approvable, { workflowId: "ts-query-orphan", taskQueue: "ts-no-endpoint" });
    const unavailable = await orphan.query(statusQuery).then(
      () => assert.fail("a query nobody can answer should fail"),
      (e: unknown) => e,
    );
    assert.ok(unavailable instanceof ServiceError, String(unavailable));
    assert.ok(!(unavailable instanceof WorkflowQueryFailedError));
    assert.equal(unavailable.status, 503);
    await orphan.terminate("done");
  });

  /** Starts `workflow`, cancels the run once its timer is pending, and returns the event types of the CANCELED run. */
  async function cancelDuringTimer(workflow: () => Promise<string>, workflowId: string): Promise<string[]> {
    const handle = await env.client.workflow.start(workflow, { workflowId, taskQueue: QUEUE });
    await until("the nap's timer", async () => ((await handle.describe()).pending.pending_timers as unknown[]).length > 0 || undefined);
    await handle.cancel();
    const err = await handle.result().then(
      () => assert.fail("should be cancelled"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.equal(err.status, "CANCELED");
    return (await handle.fetchHistory()).events.map((e) => e.event_type);
  }

  test("cancelling a run cancels its timer and the run ends CANCELED", async () => {
    const types = await cancelDuringTimer(Nap, "ts-nap");
    assert.ok(types.includes("TimerCanceled"), types.join(", "));
    assert.equal(types.at(-1), "WorkflowExecutionCanceled");
  });

  test("a workflow that throws an ApplicationFailure fails: WorkflowFailedError", async () => {
    const err = await env.client.workflow.execute(Fails, { workflowId: "ts-fails", taskQueue: QUEUE }).then(
      () => assert.fail("should fail"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure);
    assert.equal(err.cause.type, "Rejected");
    assert.equal(err.cause.message, "order rejected");
  });

  test("activity cancellation types: TRY_CANCEL and ABANDON go on at once, WAIT_CANCELLATION_COMPLETED waits for the acknowledgement", async () => {
    const types = ["TRY_CANCEL", "WAIT_CANCELLATION_COMPLETED", "ABANDON"] as const;
    const handles = await Promise.all(
      types.map((type) => env.client.workflow.start(CancelPatient, { workflowId: `ts-cancel-${type}`, taskQueue: QUEUE, args: [type] })),
    );
    await until("the activities to run", async () => (types.every((t) => patientRunning.has(`ts-cancel-${t}`)) ? true : undefined));
    await Promise.all(handles.map((h) => h.signal(stopSignal)));
    const eventTypes = async (h: (typeof handles)[number]): Promise<string[]> => (await h.fetchHistory()).events.map((e) => e.event_type);
    for (const [i, type] of types.entries()) {
      const handle = handles[i]!;
      assert.equal(await handle.result(), "cancelled", type);
      const events = await eventTypes(handle);
      const requested = events.indexOf("ActivityTaskCancelRequested");
      const closed = events.indexOf("WorkflowExecutionCompleted");
      if (type === "ABANDON") assert.equal(requested, -1, events.join(", "));
      else assert.ok(requested > 0 && requested < closed, events.join(", "));
      if (type === "WAIT_CANCELLATION_COMPLETED") {
        // The activity saw the request in a heartbeat answer and acknowledged it before the workflow went on.
        assert.equal(patientEnds.get(`ts-cancel-${type}`), "cancel requested");
        const canceled = events.indexOf("ActivityTaskCanceled");
        assert.ok(canceled > requested && canceled < closed, events.join(", "));
      } else {
        assert.equal(events.indexOf("ActivityTaskCanceled"), -1, events.join(", "));
      }
    }
    // The others' attempts end when their next heartbeat is refused (the run closed).
    await until("the abandoned activities to stop", async () => (patientEnds.size === 3 ? true : undefined), 20_000);
  });

  test("withTimeout: a day later the scope cancels the activity that never answered", async () => {
    const handle = await env.client.workflow.start(Deadline, { workflowId: "ts-deadline", taskQueue: QUEUE });
    await until("the activity and the scope's timer", async () => {
      const d = await handle.describe();
      return (d.pending.pending_timers as unknown[]).length > 0 && (d.pending.pending_activities as unknown[]).length > 0 ? true : undefined;
    });
    await env.skipTime("1 day");
    assert.equal(await handle.result(), "gave up after a day");
    const events = (await handle.fetchHistory()).events.map((e) => e.event_type);
    assert.ok(events.includes("TimerFired") && events.includes("ActivityTaskCancelRequested"), events.join(", "));
  });

  test("nonCancellable: cleanup runs after the workflow is cancelled and the run ends CANCELED", async () => {
    const events = await cancelDuringTimer(CleanNap, "ts-clean-nap");
    assert.equal(calls.cleanup, 1);
    const completed = events.indexOf("ActivityTaskCompleted");
    assert.ok(events.indexOf("TimerCanceled") < completed && completed < events.indexOf("WorkflowExecutionCanceled"), events.join(", "));
  });

  test("updates: a validator rejects bad input and leaves no history, a handler awaits an activity, a duplicate update id gets the first result", async () => {
    const handle = await env.client.workflow.start(ShoppingCart, { workflowId: "ts-cart", taskQueue: QUEUE });
    assert.equal(await handle.executeUpdate(addItem, { args: ["apple", 2], updateId: "add-apples" }), 2);
    const historyLength = async (): Promise<number> => (await handle.fetchHistory()).events.length;
    const before = await historyLength();
    const rejected = await handle.executeUpdate(addItem, { args: ["pear", 0] }).then(
      () => assert.fail("a zero quantity should be rejected"),
      (e: unknown) => e,
    );
    assert.ok(rejected instanceof WorkflowUpdateFailedError, String(rejected));
    assert.ok(rejected.cause instanceof ApplicationFailure);
    assert.equal(rejected.cause.type, "InvalidQuantity");
    assert.equal(await historyLength(), before, "a rejected update is not recorded");
    // A retry with the same update id is not applied again: it gets the first outcome.
    assert.equal(await handle.executeUpdate(addItem, { args: ["apple", 5], updateId: "add-apples" }), 2);
    assert.equal(await handle.executeUpdate("add_item", { args: ["pear", 1] }), 3);
    const started = await handle.startUpdate(checkout, { waitForStage: WorkflowUpdateStage.ACCEPTED });
    assert.equal(await started.result(), "reserved 3 items");
    assert.equal(await handle.getUpdateHandle<string>(started.updateId).result(), "reserved 3 items");
    assert.deepEqual(await handle.result(), ["apple", "apple", "pear"]);
    const types = (await handle.fetchHistory()).events.map((e) => e.event_type);
    assert.equal(types.filter((t) => t === "WorkflowExecutionUpdateCompleted").length, 3, types.join(", "));
  });

  test("continue-as-new: a counter continues every 3 steps, keeps its state, and the client's result follows the chain", async () => {
    const handle = await env.client.workflow.start(Counter, { workflowId: "ts-counter", taskQueue: QUEUE, args: [0, 8, 1] });
    assert.deepEqual(await handle.result(), { count: 8, runs: 3, firstRunId: handle.firstExecutionRunId });
    const first = await env.client.workflow.getHandle("ts-counter", handle.firstExecutionRunId).describe();
    assert.equal(first.status.name, "CONTINUED_AS_NEW");
    const last = await env.client.workflow.getHandle("ts-counter").describe();
    assert.equal(last.status.name, "COMPLETED");
    assert.notEqual(last.runId, handle.firstExecutionRunId);
  });
});
