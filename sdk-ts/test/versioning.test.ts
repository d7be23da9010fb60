/**
 * Worker versioning with `patched`, end to end (protocol.md §1.4): one task
 * queue served by two code versions, each its own handler registered as
 * endpoint versions v1 and v2. Runs stay on the version they started on,
 * new runs go to the current one, a run moved to v2 with move-runs
 * completes there thanks to `patched`, and an unpatched change is caught by
 * the Replayer.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Context } from "../src/activity.js";
import { NonDeterminismError } from "../src/common.js";
import type * as wire from "../src/generated/openapi.js";
import { createHandler } from "../src/index.js";
import { Replayer, type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { condition, defineSignal, patched, proxyActivities, setHandler } from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY, until } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const QUEUE = "ts-versions";

/** Which version's handler ran each activity, by workflow id. */
const ranOn = new Map<string, string[]>();

type Step = (order: string) => Promise<string>;

function activitiesOf(version: string): { reserve: Step; fraud_check: Step; ship: Step } {
  const record = (step: string): Step => async (order) => {
    const wid = Context.current().info.workflowExecution.workflowId;
    ranOn.set(wid, [...(ranOn.get(wid) ?? []), `${step}@${version}`]);
    return `${step}:${order}`;
  };
  return { reserve: record("reserve"), fraud_check: record("fraud_check"), ship: record("ship") };
}

const act = proxyActivities<ReturnType<typeof activitiesOf>>({ startToCloseTimeout: "10s" });
const release = defineSignal("release");

/** Version 1: reserve, wait for the release signal, ship. */
async function FulfillmentV1(order: string): Promise<string> {
  let released = false;
  setHandler(release, () => {
    released = true;
  });
  await act.reserve(order);
  await condition(() => released);
  return `v1 ${await act.ship(order)}`;
}

/** Version 2: a fraud check after the reservation, behind `patched` so v1 runs still replay. */
async function FulfillmentV2(order: string): Promise<string> {
  let released = false;
  setHandler(release, () => {
    released = true;
  });
  await act.reserve(order);
  const checked = patched("fraud-check");
  if (checked) await act.fraud_check(order);
  await condition(() => released);
  return `v2 ${await act.ship(order)}${checked ? " after a fraud check" : " without a fraud check"}`;
}

/** Version 2 written without `patched`: it cannot replay v1 histories. */
async function FulfillmentUnpatched(order: string): Promise<string> {
  let released = false;
  setHandler(release, () => {
    released = true;
  });
  await act.reserve(order);
  await act.fraud_check(order);
  await condition(() => released);
  return `v2 ${await act.ship(order)}`;
}

describe("versioning with patched against baton dev", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  const served: ServedHandler[] = [];

  before(async () => {
    env = await TestWorkflowEnvironment.createLocal();
  });

  after(async () => {
    for (const s of served) await s.close();
    await env?.teardown();
  });

  async function deploy(version: string, Fulfillment: (order: string) => Promise<string>): Promise<void> {
    const s = await serveHandler(createHandler({ workflows: { Fulfillment }, activities: activitiesOf(version), signingSecret: SECRET }));
    served.push(s);
    await env.registerEndpoint(QUEUE, s.url, SECRET, { version });
  }

  const versions = async (): Promise<Record<string, number>> => {
    const { json } = await env.client.connection.call("GET", `/api/v1/namespaces/default/endpoints/${QUEUE}/versions`);
    return Object.fromEntries((json as wire.EndpointVersionList).versions.map((v) => [v.version, v.open_runs]));
  };

  test("runs stay on their version, new runs take the current one, a moved run completes thanks to patched", async () => {
    const { client } = env;
    await deploy("v1", FulfillmentV1);
    const start = (id: string) => client.workflow.start<string>("Fulfillment", { workflowId: id, taskQueue: QUEUE, args: [id] });
    const waiting = async (id: string, steps: number): Promise<void> => {
      await until(`${id} to wait for its signal`, async () => ((ranOn.get(id)?.length ?? 0) >= steps ? true : undefined));
    };
    const onV1 = await start("order-1");
    const movedLater = await start("order-2");
    await waiting("order-1", 1);
    await waiting("order-2", 1);

    await deploy("v2", FulfillmentV2);
    const onV2 = await start("order-3");
    await waiting("order-3", 2);
    assert.deepEqual(await versions(), { v1: 2, v2: 1 });
    assert.equal((await onV1.describe()).pending.pinned_version, "v1");
    assert.equal((await onV2.describe()).pending.pinned_version, "v2");

    const moved = await client.connection.call("POST", `/api/v1/namespaces/default/endpoints/${QUEUE}/versions/v2/move-runs`, {
      from_version: "v1",
      workflow_ids: ["order-2"],
      reason: "ship order-2 with the new code",
    } satisfies wire.MoveRunsRequest);
    assert.equal((moved.json as wire.MovedRuns).moved, 1);
    assert.deepEqual(await versions(), { v1: 1, v2: 2 });

    for (const h of [onV1, movedLater, onV2]) await h.signal(release);
    assert.equal(await onV1.result(), "v1 ship:order-1");
    assert.equal(await movedLater.result(), "v2 ship:order-2 without a fraud check");
    assert.equal(await onV2.result(), "v2 ship:order-3 after a fraud check");
    assert.deepEqual(ranOn.get("order-1"), ["reserve@v1", "ship@v1"]);
    assert.deepEqual(ranOn.get("order-2"), ["reserve@v1", "ship@v2"]);
    assert.deepEqual(ranOn.get("order-3"), ["reserve@v2", "fraud_check@v2", "ship@v2"]);
    assert.deepEqual(await versions(), { v1: 0, v2: 0 });
    const movedEvents = (await movedLater.fetchHistory()).events;
    assert.ok(movedEvents.some((e) => e.event_type === "WorkflowExecutionOptionsUpdated"), movedEvents.map((e) => e.event_type).join(", "));

    // Both v1 and v2 histories replay on the patched code; the unpatched change is caught.
    const v1History = await onV1.fetchHistory();
    await new Replayer({ Fulfillment: FulfillmentV2 }).replay(v1History);
    await new Replayer({ Fulfillment: FulfillmentV2 }).replay(await onV2.fetchHistory());
    await assert.rejects(new Replayer({ Fulfillment: FulfillmentUnpatched }).replay(v1History), NonDeterminismError);
  });
});
