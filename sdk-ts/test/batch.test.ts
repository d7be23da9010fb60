/**
 * Batch operations end to end (`client.batch.start/describe/list/stop`)
 * against a real `baton dev`, whose workflows a handler on loopback runs:
 * a signal batch reaches each matching run once and the workflow code sees
 * it; cancel and terminate batches close exactly the matching runs; a job
 * stops midway; bad input is a 400 naming the field.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type BatchDescription, BatchOperationState, BatchResetType, type Client, ServiceError, WorkflowFailedError } from "../src/client.js";
import { createHandler } from "../src/index.js";
import { type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { condition, defineSignal, setHandler } from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY, until } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const QUEUE = "ts-batch";
const add = defineSignal<[string]>("add");

export async function Basket(wanted: number): Promise<string[]> {
  const items: string[] = [];
  setHandler(add, (item: string) => {
    items.push(item);
  });
  await condition(() => items.length >= wanted);
  return items;
}

describe("batch operations", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  let served: ServedHandler;
  let client: Client;

  before(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping();
    served = await serveHandler(createHandler({ workflows: { Basket }, signingSecret: SECRET }));
    await env.registerEndpoint(QUEUE, served.url, SECRET);
    client = env.client;
  });

  after(async () => {
    await served?.close();
    await env?.teardown();
  });

  const closed = (jobId: string): Promise<BatchDescription> =>
    until(`batch ${jobId} to close`, async () => {
      const d = await client.batch.describe(jobId);
      return d.state === BatchOperationState.RUNNING ? undefined : d;
    });

  async function startBaskets(prefix: string, n: number, wanted: number): Promise<string[]> {
    const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
    for (const workflowId of ids) await client.workflow.start(Basket, { workflowId, taskQueue: QUEUE, args: [wanted] });
    return ids;
  }

  test("a signal batch reaches each matching run once", async () => {
    const ids = await startBaskets("sig", 4, 1);
    const other = await startBaskets("other", 1, 1);
    const started = await client.batch.start({
      jobId: "ts-sig",
      query: 'WorkflowType = "Basket" AND WorkflowId STARTS_WITH "sig-"',
      operation: { type: "signal", signal: add, args: ["plum"] },
      rps: 100,
      reason: "promo",
    });
    assert.equal(started.totalOperationCount, 4);
    assert.equal(started.operation, "signal");
    const d = await closed("ts-sig");
    assert.equal(d.state, "COMPLETED");
    assert.deepEqual([d.completeOperationCount, d.failureOperationCount], [4, 0]);
    assert.ok(d.closeTime && d.closeTime >= d.startTime);
    for (const id of ids) assert.deepEqual(await client.workflow.getHandle<string[]>(id).result(), ["plum"]);
    assert.equal((await client.workflow.getHandle(other[0] ?? "").describe()).status.name, "RUNNING");
  });

  test("cancel, terminate and reset batches touch only the matching runs", async () => {
    const cancelled = await startBaskets("can", 2, 9);
    const doomed = await startBaskets("doom", 2, 9);
    const reset = await startBaskets("again", 2, 9);
    await client.batch.start({ jobId: "ts-cancel", query: 'WorkflowId STARTS_WITH "can-"', operation: { type: "cancel" } });
    await client.batch.start({ jobId: "ts-doom", requestId: "r-doom", query: 'WorkflowId STARTS_WITH "doom-"', operation: { type: "terminate" }, reason: "cleanup" });
    const retried = await client.batch.start({ jobId: "ts-doom", requestId: "r-doom", query: 'WorkflowId STARTS_WITH "doom-"', operation: { type: "terminate" } });
    assert.equal(retried.reason, "cleanup", "a retry returns the job it started");
    // A reset needs a completed workflow task to go back to.
    for (const id of reset) {
      await until(`${id}'s first workflow task`, async () =>
        (await client.workflow.getHandle(id).fetchHistory()).events.some((e) => e.event_type === "WorkflowTaskCompleted") || undefined,
      );
    }
    await client.batch.start({ jobId: "ts-reset", query: 'WorkflowId STARTS_WITH "again-"', operation: { type: "reset", resetType: BatchResetType.FIRST_WORKFLOW_TASK }, reason: "bad deploy" });
    for (const [job, n] of [["ts-cancel", 2], ["ts-doom", 2], ["ts-reset", 2]] as const) {
      const d = await closed(job);
      assert.deepEqual([d.totalOperationCount, d.completeOperationCount], [n, n], `${job}: ${JSON.stringify(d.failures)}`);
    }
    for (const [ids, status] of [[cancelled, "CANCELED"], [doomed, "TERMINATED"]] as const) {
      for (const id of ids) {
        const err = await client.workflow.getHandle(id).result().then(
          () => assert.fail(`${id} should have closed`),
          (e: unknown) => e,
        );
        assert.ok(err instanceof WorkflowFailedError);
        assert.equal(err.status, status);
      }
    }
    for (const id of reset) assert.equal((await client.workflow.getHandle(id).describe()).status.name, "RUNNING");
    const listed: string[] = [];
    for await (const b of client.batch.list({ pageSize: 2 })) listed.push(b.jobId);
    assert.ok(listed.indexOf("ts-reset") < listed.indexOf("ts-cancel"), "newest first");
  });

  test("a job stops midway and bad input is refused", async () => {
    await startBaskets("slow", 30, 9);
    await client.batch.start({ jobId: "ts-slow", query: 'WorkflowId STARTS_WITH "slow-"', operation: { type: "signal", signal: "add", args: ["fig"] }, rps: 10 });
    await until("progress", async () => ((await client.batch.describe("ts-slow")).completeOperationCount >= 2 ? true : undefined));
    assert.equal((await client.batch.stop("ts-slow")).stopRequested, true);
    const d = await closed("ts-slow");
    assert.equal(d.state, "STOPPED");
    assert.ok(d.completeOperationCount >= 2 && d.completeOperationCount < 30, String(d.completeOperationCount));

    const refused = async (start: Promise<unknown>, fragment: string): Promise<void> => {
      const err = await start.then(
        () => assert.fail("should be refused"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof ServiceError);
      assert.equal(err.status, 400);
      assert.ok(err.message.includes(fragment), err.message);
    };
    await refused(client.batch.start({ query: "WorkflowType = ", operation: { type: "terminate" } }), "query");
    await refused(client.batch.start({ query: 'WorkflowType = "X"', operation: { type: "terminate" }, rps: 0 }), "rps");
    await refused(client.batch.start({ query: 'WorkflowType = "X"', operation: { type: "signal", signal: "" } }), "signal_name");
    await assert.rejects(client.batch.describe("nope"), (e: unknown) => e instanceof ServiceError && e.status === 404);
  });
});
