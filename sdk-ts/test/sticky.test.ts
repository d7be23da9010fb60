/**
 * Sticky and paged pushes end to end against `baton dev --push-history-bytes
 * 4096` (protocol.md §5.10): runs whose activity results outgrow the bound,
 * served by `toNodeListener` handlers on loopback. What the handler did is
 * read from `handler.stats()`: tasks answered by a kept instance (hits),
 * partial pushes paged in and replayed (misses), evictions, pages fetched.
 * The activities run in a handler of their own (queue `ts-sticky-acts`), so
 * a workflow handler can be replaced while a step runs. Every history
 * replays.
 */
import assert from "node:assert/strict";
import { type Server, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { WorkflowUpdateFailedError } from "../src/client.js";
import type { HistoryEvent } from "../src/common.js";
import { type BatonHandler, type HandlerOptions, createHandler, toNodeListener } from "../src/index.js";
import { Replayer, type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { condition, defineQuery, defineUpdate, proxyActivities, setHandler } from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY, until } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const ACTIVITY_QUEUE = "ts-sticky-acts";
const PAD = 600;

/** A step's result: `${i}:` and 600 bytes, so that a few steps outgrow 4 KiB. */
const padOf = (i: number): string => `${i}:${"y".repeat(PAD)}`;
/** The total length of steps 0 … n-1's results. */
const lengthOf = (n: number): number => Array.from({ length: n }, (_, i) => padOf(i).length).reduce((a, b) => a + b, 0);

/** Test-held gates: a step given a gate's name waits until the test opens it. */
const gates = new Map<string, { arrived: number; open: () => void; opened: Promise<void> }>();
function gate(name: string): { arrived: number; open: () => void; opened: Promise<void> } {
  let g = gates.get(name);
  if (g === undefined) {
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    g = { arrived: 0, open, opened };
    gates.set(name, g);
  }
  return g;
}

const activities = {
  async sticky_pad(i: number, gateName: string | null): Promise<string> {
    if (gateName !== null) {
      const g = gate(gateName);
      g.arrived++;
      await g.opened;
    }
    return padOf(i);
  },
};

const acts = proxyActivities<typeof activities>({ taskQueue: ACTIVITY_QUEUE, startToCloseTimeout: "60s" });

/** n sequential steps; step `gateAt` waits on the gate `gateName`. Returns [steps, total length]. */
async function PadSteps(n: number, gateName: string | null = null, gateAt = -1): Promise<[number, number]> {
  let length = 0;
  for (let i = 0; i < n; i++) length += (await acts.sticky_pad(i, i === gateAt ? gateName : null)).length;
  return [n, length];
}

const stepsDone = defineQuery<[number, number]>("steps_done");
const finish = defineUpdate<number, [number]>("finish");

/** n steps, then waits for the update `finish(n)` (its validator refuses another count). */
async function PadThenWait(n: number): Promise<[number, number]> {
  let done = 0;
  let length = 0;
  let finished = false;
  setHandler(stepsDone, () => [done, length]);
  setHandler(
    finish,
    (count) => {
      finished = true;
      return count;
    },
    {
      validator: (count) => {
        if (count !== done) throw new Error(`finish(${count}) but ${done} steps are done`);
      },
    },
  );
  for (; done < n; done++) length += (await acts.sticky_pad(done, null)).length;
  await condition(() => finished);
  return [done, length];
}

const workflows = { PadSteps, PadThenWait };
const replayer = new Replayer(workflows);

/** A Node server for a handler on `port` (0: a free one), to be closed and served again on the same port. */
async function listen(handler: BatonHandler, port = 0): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer(toNodeListener(handler));
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const countOf = (events: HistoryEvent[], t: string): number => events.filter((e) => e.event_type === t).length;

describe("sticky and paged pushes against baton dev", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  let activityServer: ServedHandler;
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    env = await TestWorkflowEnvironment.createLocal({ args: ["--push-history-bytes", "4096"] });
    activityServer = await serveHandler(createHandler({ activities, signingSecret: SECRET, serverUrl: env.address }));
    await env.registerEndpoint(ACTIVITY_QUEUE, activityServer.url, SECRET);
  });

  after(async () => {
    for (const close of closers) await close();
    await activityServer?.close();
    await env?.teardown();
  });

  /** A workflow handler with `options`, served and registered for `queue`. */
  async function workflowHandler(queue: string, options: Partial<HandlerOptions> = {}, port = 0): Promise<{ handler: BatonHandler; port: number; close(): Promise<void> }> {
    const handler = createHandler({ workflows, signingSecret: SECRET, serverUrl: env.address, ...options });
    const served = await listen(handler, port);
    closers.push(served.close);
    if (port === 0) await env.registerEndpoint(queue, `http://127.0.0.1:${served.port}/`, SECRET);
    return { handler, ...served };
  }

  async function checkHistory(workflowId: string, steps: number): Promise<HistoryEvent[]> {
    const h = (await env.client.workflow.getHandle(workflowId).fetchHistory()).events;
    assert.equal(countOf(h, "ActivityTaskCompleted"), steps, workflowId);
    assert.equal(countOf(h, "WorkflowTaskTimedOut"), 0, workflowId);
    await replayer.replay({ events: h, workflow_id: workflowId });
    return h;
  }

  test("the description lists history_pages and payload_references, which registerEndpoint registers with the version", async () => {
    const { port } = await workflowHandler("ts-sticky-description");
    const url = `http://127.0.0.1:${port}/`;
    const description = (await (await fetch(url)).json()) as { features?: string[] };
    assert.deepEqual(description.features, ["history_pages", "payload_references"]);
    const registered = await env.registerEndpoint("ts-sticky-description", url, SECRET, { version: "v2" });
    assert.deepEqual(registered.features, ["history_pages", "payload_references"]);
  });

  test("thirty pushed steps: every task after the first goes on in the kept instance", async () => {
    const { handler } = await workflowHandler("ts-sticky-default");
    const result = await env.client.workflow.execute(PadSteps, { workflowId: "ts-sticky-default", taskQueue: "ts-sticky-default", args: [30] });
    assert.deepEqual(result, [30, lengthOf(30)]);
    const stats = handler.stats();
    assert.equal(stats.stickyHits, 30, JSON.stringify(stats));
    assert.equal(stats.stickyMisses, 0, JSON.stringify(stats));
    assert.equal(stats.historyPages, 0, JSON.stringify(stats));
    // The run closed: its instance is not kept.
    assert.equal(stats.cachedWorkflows, 0);
    const h = await checkHistory("ts-sticky-default", 30);
    assert.equal(countOf(h, "WorkflowTaskFailed"), 0);
  });

  test("maxCachedWorkflows: 0 answers without sticky; tasks past the bound are paged in", async () => {
    const { handler } = await workflowHandler("ts-sticky-off", { maxCachedWorkflows: 0 });
    const result = await env.client.workflow.execute(PadSteps, { workflowId: "ts-sticky-off", taskQueue: "ts-sticky-off", args: [30] });
    assert.deepEqual(result, [30, lengthOf(30)]);
    const stats = handler.stats();
    assert.equal(stats.stickyHits, 0, JSON.stringify(stats));
    assert.equal(stats.cachedWorkflows, 0);
    assert.ok(stats.stickyMisses > 0 && stats.historyPages >= stats.stickyMisses, JSON.stringify(stats));
    const h = await checkHistory("ts-sticky-off", 30);
    assert.equal(countOf(h, "WorkflowTaskFailed"), 0);
  });

  test("a handler restarted mid-run gets a sticky push without the instance: it pages in, replays and goes on", async () => {
    const queue = "ts-sticky-restart";
    const first = await workflowHandler(queue);
    const handle = await env.client.workflow.start(PadSteps, { workflowId: queue, taskQueue: queue, args: [20, queue, 12] });
    const g = gate(queue);
    await until("step 12 to start", async () => (g.arrived > 0 ? true : undefined));
    const before = first.handler.stats();
    assert.equal(before.stickyHits, 12, JSON.stringify(before));
    assert.equal(before.cachedWorkflows, 1);
    await first.close();
    // A new process on the same port: its cache is empty.
    const second = await workflowHandler(queue, {}, first.port);
    g.open();
    assert.deepEqual(await handle.result(), [20, lengthOf(20)]);
    const after = second.handler.stats();
    assert.equal(after.stickyMisses, 1, JSON.stringify(after));
    assert.ok(after.historyPages > 0, JSON.stringify(after));
    // After the replay it answered sticky again: the last seven tasks went on in its instance.
    assert.equal(after.stickyHits, 7, JSON.stringify(after));
    const h = await checkHistory(queue, 20);
    assert.equal(countOf(h, "WorkflowTaskFailed"), 0);
  });

  test("forty runs at once with maxCachedWorkflows: 8: evicted runs are paged in and replayed, all complete", async () => {
    const queue = "ts-sticky-many";
    const { handler } = await workflowHandler(queue, { maxCachedWorkflows: 8 });
    const ids = Array.from({ length: 40 }, (_, i) => `${queue}-${i}`);
    const handles = await Promise.all(ids.map((workflowId) => env.client.workflow.start(PadSteps, { workflowId, taskQueue: queue, args: [10, queue, 0] })));
    // Every run's first task was answered (and its instance kept) before its first step started.
    const g = gate(queue);
    await until("every run's first step to start", async () => (g.arrived === 40 ? true : undefined), 30_000);
    const kept = handler.stats();
    assert.equal(kept.cachedWorkflows, 8, JSON.stringify(kept));
    assert.equal(kept.evictions, 32, JSON.stringify(kept));
    g.open();
    const results = await Promise.all(handles.map((h) => h.result()));
    assert.deepEqual(
      results,
      ids.map(() => [10, lengthOf(10)]),
    );
    const stats = handler.stats();
    assert.ok(stats.cachedWorkflows <= 8, JSON.stringify(stats));
    assert.ok(stats.stickyMisses >= 32, JSON.stringify(stats));
    assert.ok(stats.historyPages > 0, JSON.stringify(stats));
    for (const id of ids) assert.equal(countOf(await checkHistory(id, 10), "WorkflowTaskFailed"), 0, id);
  });

  test("a query and an update validation of a long run answer from a paged-in history", async () => {
    const queue = "ts-sticky-query";
    const { handler } = await workflowHandler(queue);
    const handle = await env.client.workflow.start(PadThenWait, { workflowId: queue, taskQueue: queue, args: [25] });
    await until("25 steps", async () => {
      const h = (await handle.fetchHistory()).events;
      return countOf(h, "ActivityTaskCompleted") === 25 && h.at(-1)?.event_type === "WorkflowTaskCompleted" ? true : undefined;
    });
    const pagesBefore = handler.stats().historyPages;
    assert.deepEqual(await handle.query(stepsDone), [25, lengthOf(25)]);
    const pagesAfterQuery = handler.stats().historyPages;
    assert.ok(pagesAfterQuery > pagesBefore, `${pagesBefore} pages before the query, ${pagesAfterQuery} after`);
    await assert.rejects(handle.executeUpdate(finish, { args: [24] }), (err: unknown) => {
      assert.ok(err instanceof WorkflowUpdateFailedError);
      assert.match(String(err.cause?.message), /finish\(24\) but 25 steps are done/);
      return true;
    });
    assert.ok(handler.stats().historyPages > pagesAfterQuery);
    assert.equal(await handle.executeUpdate(finish, { args: [25] }), 25);
    assert.deepEqual(await handle.result(), [25, lengthOf(25)]);
    const stats = handler.stats();
    // Queries and validations neither use nor change the cache: every workflow task after the first was a hit.
    assert.equal(stats.stickyMisses, 0, JSON.stringify(stats));
    assert.equal(stats.stickyHits, 26, JSON.stringify(stats));
    await checkHistory(queue, 25);
  });

  test("a page route error fails the workflow task; the retry with a fresh push completes", async () => {
    const queue = "ts-sticky-page-error";
    // Pages asked for under a path the server does not serve: 404.
    const broken = await workflowHandler(queue, { maxCachedWorkflows: 0, checkpointBaseUrl: `${env.address}/no-such-route` });
    const handle = await env.client.workflow.start(PadSteps, { workflowId: queue, taskQueue: queue, args: [10] });
    const failed = await until("a failed workflow task", async () => (await handle.fetchHistory()).events.find((e) => e.event_type === "WorkflowTaskFailed"));
    assert.match(String((failed.attributes.failure as { message?: unknown }).message), /history page: HTTP 404/);
    assert.ok(broken.handler.stats().historyPages === 0);
    await broken.close();
    await workflowHandler(queue, { maxCachedWorkflows: 0 }, broken.port);
    assert.deepEqual(await handle.result(), [10, lengthOf(10)]);
    const h = await checkHistory(queue, 10);
    assert.equal(countOf(h, "WorkflowTaskFailed"), 1);
  });
});
