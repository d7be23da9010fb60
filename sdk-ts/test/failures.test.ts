/**
 * Failure kinds on the wire and in the client (issue 10 #4), against
 * `baton dev`: an activity's or a child's failure that fails the workflow
 * reaches `WorkflowFailedError.cause` as `ActivityFailure` /
 * `ChildWorkflowFailure` with Temporal's info and the right cause class.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { WorkflowFailedError } from "../src/client.js";
import {
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  ChildWorkflowFailure,
  ServerFailure,
  TerminatedFailure,
  TimeoutFailure,
  errorToFailure,
  failureToError,
} from "../src/common.js";
import { createHandler } from "../src/index.js";
import { type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { condition, executeChild, proxyActivities } from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY, until } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const QUEUE = "ts-failure-kinds";

const activities = {
  async decline(card: string): Promise<string> {
    throw ApplicationFailure.create({ message: `card ${card} declined`, type: "CardDeclined", details: [{ code: 51 }] });
  },
};
const { decline } = proxyActivities<typeof activities>({ startToCloseTimeout: "10s", retry: { maximumAttempts: 2, initialInterval: "1ms" } });

export async function Pay(card: string): Promise<string> {
  return decline(card);
}

export async function Stuck(): Promise<void> {
  await condition(() => false);
}

export async function Parent(childId: string): Promise<void> {
  await executeChild(Stuck, { workflowId: childId });
}

async function failedCause(p: Promise<unknown>): Promise<Error | undefined> {
  const err = await p.then(
    () => assert.fail("should fail"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, String(err));
  return err.cause;
}

describe("failure kinds against baton dev", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  let served: ServedHandler;

  before(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping();
    served = await serveHandler(createHandler({ workflows: { Pay, Stuck, Parent }, activities, signingSecret: SECRET }));
    await env.registerEndpoint(QUEUE, served.url, SECRET);
  });

  after(async () => {
    await served?.close();
    await env?.teardown();
  });

  test("an activity's failure reaches the client as ActivityFailure caused by the ApplicationFailure", async () => {
    const handle = await env.client.workflow.start(Pay, { workflowId: "ts-pay-1", taskQueue: QUEUE, args: ["4242"] });
    const cause = await failedCause(handle.result());
    assert.ok(cause instanceof ActivityFailure, String(cause));
    assert.deepEqual([cause.activityType, cause.activityId, cause.retryState], ["decline", "1", "MAXIMUM_ATTEMPTS_REACHED"]);
    assert.ok(cause.cause instanceof ApplicationFailure, String(cause.cause));
    assert.deepEqual([cause.cause.type, cause.cause.details], ["CardDeclined", [{ code: 51 }]]);
    const failure = (await handle.fetchHistory()).events.at(-1)?.attributes.failure as Record<string, unknown>;
    assert.equal(failure.kind, "ACTIVITY");
    assert.deepEqual(failure.activity_failure_info, { activity_type: "decline", activity_id: "1", retry_state: "MAXIMUM_ATTEMPTS_REACHED" });
  });

  test("a terminated child fails its parent with ChildWorkflowFailure caused by TerminatedFailure", async () => {
    const handle = await env.client.workflow.start(Parent, { workflowId: "ts-parent-kinds", taskQueue: QUEUE, args: ["ts-stuck-1"] });
    await until("the child", async () => ((await handle.describe()).pending.children.some((c) => c.status === "RUNNING") ? true : undefined));
    await env.client.workflow.getHandle("ts-stuck-1").terminate("operator");
    const cause = await failedCause(handle.result());
    assert.ok(cause instanceof ChildWorkflowFailure, String(cause));
    assert.deepEqual([cause.execution.workflowId, cause.workflowType, cause.namespace], ["ts-stuck-1", "Stuck", "default"]);
    assert.ok(cause.cause instanceof TerminatedFailure, String(cause.cause));
    const failure = (await handle.fetchHistory()).events.at(-1)?.attributes.failure as Record<string, unknown>;
    assert.equal(failure.kind, "CHILD_WORKFLOW_EXECUTION");
    assert.equal((failure.cause as Record<string, unknown>).kind, "TERMINATED");
  });
});

test("every kind round-trips; failures without a kind decode as before", () => {
  for (const err of [
    new TimeoutFailure("t", "HEARTBEAT"),
    new CancelledFailure("c", ["why"]),
    new TerminatedFailure("gone"),
    new ServerFailure("s", true),
    ApplicationFailure.nonRetryable("x", "T"),
  ]) {
    const back = failureToError(errorToFailure(err));
    assert.equal(back.constructor, err.constructor);
  }
  assert.equal(errorToFailure(new TypeError("boom")).kind, "APPLICATION");
  const old = failureToError({ message: "boom", type: "KeyError" });
  assert.ok(old instanceof ApplicationFailure && old.type === "KeyError");
  assert.ok(failureToError({ message: "t", type: "TimeoutError" }) instanceof TimeoutFailure);
  const legacy = failureToError({ message: "a", type: "ActivityError", details: { activity_type: "x", activity_id: "7" } });
  assert.ok(legacy instanceof ActivityFailure && legacy.activityId === "7");
});
