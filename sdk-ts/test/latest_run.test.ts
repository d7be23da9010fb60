/**
 * Issue 10, end to end against `baton dev`: handles without a run id reach
 * the workflow id's latest run after continue-as-new and after a reset
 * (#3), `client.workflow.signalWithStart` (#5), and a cancelled parent
 * that awaits its children ends CANCELED and is not retried (#1).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { WorkflowFailedError } from "../src/client.js";
import { CancelledFailure } from "../src/common.js";
import { createHandler } from "../src/index.js";
import { type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { condition, continueAsNew, defineQuery, defineSignal, defineUpdate, executeChild, setHandler, workflowInfo } from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY, until } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const QUEUE = "ts-latest-run";

const put = defineSignal<[string]>("put");
const rollOver = defineSignal("roll_over");
const finish = defineSignal("finish");
const contents = defineQuery<{ items: string[]; run: string }>("contents");
const count = defineUpdate<number>("count");

/** Collects items; `roll_over` continues it as new with what it has, `finish` returns them. */
export async function Mailbox(carried: string[]): Promise<string[]> {
  const items = [...carried];
  let roll = false;
  let done = false;
  setHandler(put, (item) => void items.push(item));
  setHandler(rollOver, () => void (roll = true));
  setHandler(finish, () => void (done = true));
  setHandler(contents, () => ({ items, run: workflowInfo().runId }));
  setHandler(count, () => items.length);
  await condition(() => roll || done);
  if (roll && !done) await continueAsNew<typeof Mailbox>(items);
  return items;
}

/** Waits for a `finish` signal that never comes. */
export async function Line(): Promise<void> {
  let done = false;
  setHandler(finish, () => void (done = true));
  await condition(() => done);
}

/** Two waiting children, awaited together. */
export async function Parent(id: string): Promise<void> {
  await Promise.all([1, 2].map((n) => executeChild(Line, { workflowId: `${id}-line-${n}` })));
}

describe("handles without a run id, signalWithStart, cancelled parents (issue 10)", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  let served: ServedHandler;

  before(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping();
    served = await serveHandler(createHandler({ workflows: { Mailbox, Line, Parent }, signingSecret: SECRET }));
    await env.registerEndpoint(QUEUE, served.url, SECRET);
  });

  after(async () => {
    await served?.close();
    await env?.teardown();
  });

  test("after continue-as-new and after a reset, a start handle reaches the latest run", async () => {
    const handle = await env.client.workflow.start(Mailbox, { workflowId: "ts-mailbox-1", taskQueue: QUEUE, args: [[]] });
    const first = handle.firstExecutionRunId;
    assert.equal(handle.runId, undefined);
    await handle.signal(put, "a");
    await handle.signal(rollOver);
    const second = await until("the next run", async () => {
      const d = await handle.describe();
      return d.runId !== first && d.status.name === "RUNNING" ? d.runId : undefined;
    });
    await handle.signal(put, "b");
    assert.deepEqual(await handle.query(contents), { items: ["a", "b"], run: second });
    assert.equal(await handle.executeUpdate(count), 2);

    const { json } = await env.client.connection.call("POST", "/api/v1/namespaces/default/workflows/ts-mailbox-1/reset", {
      reset_type: "LAST_WORKFLOW_TASK",
      reason: "replay the mailbox",
    });
    const reset = (json as { run_id: string }).run_id;
    assert.equal((await handle.describe()).runId, reset);
    assert.equal((await handle.query(contents)).run, reset);
    await handle.signal(finish);
    assert.deepEqual(await handle.result(), ["a", "b"]);
    assert.equal((await env.client.workflow.getHandle("ts-mailbox-1", second).describe()).status.name, "TERMINATED");
  });

  test("cancel and terminate through a getHandle(id) handle reach the latest run", async () => {
    await env.client.workflow.start(Mailbox, { workflowId: "ts-mailbox-2", taskQueue: QUEUE, args: [[]] });
    const handle = env.client.workflow.getHandle("ts-mailbox-2");
    const first = (await handle.describe()).runId;
    await handle.signal(rollOver);
    await until("the next run", async () => {
      const d = await handle.describe();
      return d.runId !== first && d.status.name === "RUNNING" ? true : undefined;
    });
    await handle.terminate("done with it");
    assert.equal((await handle.describe()).status.name, "TERMINATED");
  });

  test("signalWithStart starts a run with the signal, then signals the open run", async () => {
    const started = await env.client.workflow.signalWithStart(Mailbox, {
      workflowId: "ts-mailbox-sws",
      taskQueue: QUEUE,
      args: [["x"]],
      signal: put,
      signalArgs: ["y"],
    });
    assert.equal(started.firstExecutionRunId, started.signaledRunId);
    const again = await env.client.workflow.signalWithStart("Mailbox", { workflowId: "ts-mailbox-sws", taskQueue: QUEUE, args: [[]], signal: "put", signalArgs: ["z"] });
    assert.equal(again.signaledRunId, started.signaledRunId);
    await started.signal(finish);
    assert.deepEqual(await started.result(), ["x", "y", "z"]);
  });

  test("a cancelled parent awaiting its children ends CANCELED and its retry policy starts nothing", async () => {
    const parent = await env.client.workflow.start(Parent, {
      workflowId: "ts-parent-1",
      taskQueue: QUEUE,
      args: ["ts-parent-1"],
      retry: { maximumAttempts: 3, initialInterval: "10ms" },
    });
    await until("both children", async () => {
      const children = (await parent.describe()).pending.children;
      return children.length === 2 && children.every((c) => c.status === "RUNNING") ? true : undefined;
    });
    await parent.cancel();
    const first = env.client.workflow.getHandle("ts-parent-1", parent.firstExecutionRunId);
    const err = await first.result().then(
      () => assert.fail("should be cancelled"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.equal(err.status, "CANCELED");
    assert.ok(err.cause instanceof CancelledFailure, String(err.cause));
    const latest = await parent.describe();
    assert.deepEqual([latest.runId, latest.status.name], [parent.firstExecutionRunId, "CANCELED"]);
  });
});
