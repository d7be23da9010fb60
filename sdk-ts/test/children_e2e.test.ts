/**
 * Child workflows end to end against `baton dev` (protocol.md §5.6): an
 * order starts one fulfillment child per line on another task queue,
 * served by a second handler registered as its own endpoint; cancelling
 * the order cancels its children (WAIT_CANCELLATION_COMPLETED) and the
 * order ends CANCELED after them; signals reach a child through its handle
 * and another workflow through an external handle.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { WorkflowFailedError } from "../src/client.js";
import { createHandler } from "../src/index.js";
import { type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import {
  condition,
  defineSignal,
  executeChild,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  startChild,
} from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY, until } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const ORDERS = "ts-orders";
const FULFILLMENT = "ts-fulfillment";

const fulfillmentActivities = {
  async pack(line: string): Promise<string> {
    return `packed ${line}`;
  },
};
const { pack } = proxyActivities<typeof fulfillmentActivities>({ startToCloseTimeout: "10s" });
const expedite = defineSignal<[string]>("expedite");

/** Packs one line; with `wait`, first waits a day (or for an `expedite` signal). */
async function Fulfill(line: string, wait: boolean): Promise<string> {
  let note = "";
  setHandler(expedite, (by) => {
    note = ` (expedited by ${by})`;
  });
  if (wait) await condition(() => note !== "", "1 day");
  return `${await pack(line)}${note}`;
}

/** One child per order line on the fulfillment queue; their results, in order. */
async function Order(lines: string[], wait: boolean): Promise<string[]> {
  return Promise.all(lines.map((line) => executeChild(Fulfill, { workflowId: `${line}-fulfillment`, args: [line, wait], taskQueue: FULFILLMENT })));
}

/** Starts a waiting child, expedites it through its handle, and signals an unrelated workflow through an external handle. */
async function Expedited(line: string, other: string): Promise<unknown> {
  const child = await startChild(Fulfill, { workflowId: `${line}-fulfillment`, args: [line, true], taskQueue: FULFILLMENT });
  await child.signal(expedite, "the parent");
  await getExternalWorkflowHandle(other).signal(expedite, "a stranger");
  const missing = await getExternalWorkflowHandle("no-such-workflow").signal(expedite, "nobody").then(
    () => "delivered",
    (err: unknown) => (err as Error).message,
  );
  return { child: await child.result(), missing };
}

/** One waiting child; cancelling the order cancels it, and the order ends once the child did. */
async function CancellableOrder(line: string): Promise<string> {
  return executeChild(Fulfill, { workflowId: `${line}-fulfillment`, args: [line, true], taskQueue: FULFILLMENT });
}

describe("child workflows against baton dev", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  const served: ServedHandler[] = [];

  before(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping();
    for (const [queue, options] of [
      [ORDERS, { workflows: { Order, Expedited, CancellableOrder } }],
      [FULFILLMENT, { workflows: { Fulfill }, activities: fulfillmentActivities }],
    ] as const) {
      const s = await serveHandler(createHandler({ ...options, signingSecret: SECRET }));
      served.push(s);
      await env.registerEndpoint(queue, s.url, SECRET);
    }
  });

  after(async () => {
    for (const s of served) await s.close();
    await env?.teardown();
  });

  test("an order gathers the results of one child per line, served on another queue", async () => {
    const result = await env.client.workflow.execute(Order, { workflowId: "ts-order-1", taskQueue: ORDERS, args: [["ts-a", "ts-b", "ts-c"], false] });
    assert.deepEqual(result, ["packed ts-a", "packed ts-b", "packed ts-c"]);
    const d = await env.client.workflow.getHandle("ts-a-fulfillment").describe();
    assert.equal(d.status.name, "COMPLETED");
    assert.equal(d.taskQueue, FULFILLMENT);
  });

  test("a child's handle signals it, an external handle signals another workflow, a missing one is an error", async () => {
    const stranger = await env.client.workflow.start(Fulfill, { workflowId: "ts-stranger", taskQueue: FULFILLMENT, args: ["ts-s", true] });
    const result = await env.client.workflow.execute(Expedited, { workflowId: "ts-expedited", taskQueue: ORDERS, args: ["ts-e", "ts-stranger"] });
    assert.deepEqual(result, {
      child: "packed ts-e (expedited by the parent)",
      missing: "Unable to signal external workflow no-such-workflow because it was not found",
    });
    assert.equal(await stranger.result(), "packed ts-s (expedited by a stranger)");
  });

  test("cancelling the parent cancels its children first (WAIT_CANCELLATION_COMPLETED); both end CANCELED", async () => {
    const parent = await env.client.workflow.start(CancellableOrder, { workflowId: "ts-cancel-order", taskQueue: ORDERS, args: ["ts-x"] });
    const child = env.client.workflow.getHandle("ts-x-fulfillment");
    await until("the child's timer", async () => {
      try {
        return (await child.describe()).pending.pending_timers.length > 0 ? true : undefined;
      } catch {
        return undefined;
      }
    });
    await parent.cancel();
    for (const h of [child, parent]) {
      const err = await h.result().then(
        () => assert.fail("should be cancelled"),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError, String(err));
      assert.equal(err.status, "CANCELED");
    }
    const types = (await parent.fetchHistory()).events.map((e) => e.event_type);
    const canceled = types.indexOf("ChildWorkflowExecutionCanceled");
    assert.ok(types.indexOf("RequestCancelExternalWorkflowExecutionInitiated") < canceled && canceled < types.indexOf("WorkflowExecutionCanceled"), types.join(", "));
  });
});
