// End to end: schemas given on a workflow (withSchema), its signal and
// update definitions (the `schema` option) and an activity are published
// in the handler's description, registered with the endpoint, and make a
// real `baton dev` refuse bad payloads before it writes anything.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ServiceError } from "../src/client.js";
import { createHandler, withSchema } from "../src/index.js";
import { type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { condition, defineQuery, defineSignal, defineUpdate, setHandler } from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const QUEUE = "ts-schemas";

interface Order {
  amount: number;
}
const ORDER = { type: "object", properties: { amount: { type: "integer" } }, required: ["amount"] };
const approve = defineSignal<[boolean]>("approve", { schema: { type: "boolean" } });
const resize = defineUpdate<number, [number]>("resize", { schema: { type: "integer" } });
const status = defineQuery<boolean | null>("status");

export const SchemaOrder = withSchema(
  async function SchemaOrder(order: Order): Promise<{ amount: number; approved: boolean; size: number }> {
    let approved: boolean | null = null;
    let size = 0;
    setHandler(approve, (yes) => void (approved = yes));
    setHandler(resize, (n) => (size = n));
    setHandler(status, () => approved);
    await condition(() => approved !== null);
    return { amount: order.amount, approved: approved === true, size };
  },
  { schema: ORDER, handlers: [approve, resize, status] },
);

const activities = { charge: withSchema(async (order: Order): Promise<number> => order.amount, { schema: ORDER }) };

function invalid(pointer: string): (e: unknown) => boolean {
  return (e) => e instanceof ServiceError && e.status === 400 && e.code === "invalid_input" && e.message.includes(pointer);
}

test("the description publishes the schemas of the argument arrays", async () => {
  const handler = createHandler({ workflows: { SchemaOrder }, activities, signingSecret: SECRET });
  const d = (await (await handler(new Request("http://x/"))).json()) as Record<string, any>;
  assert.deepEqual(d.workflows, [{ name: "SchemaOrder", signals: ["approve"], queries: ["status"], updates: ["resize"] }]);
  assert.deepEqual(d.schemas, {
    workflows: {
      SchemaOrder: {
        input: { type: "array", prefixItems: [ORDER], minItems: 1 },
        signals: { approve: { type: "array", prefixItems: [{ type: "boolean" }], minItems: 1 } },
        updates: { resize: { type: "array", prefixItems: [{ type: "integer" }], minItems: 1 } },
      },
    },
    activities: { charge: { input: { type: "array", prefixItems: [ORDER], minItems: 1 } } },
  });
  // Without schemas the definitions are as before.
  assert.deepEqual(defineSignal("plain"), { type: "signal", name: "plain" });
});

describe("schemas against baton dev", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  let served: ServedHandler;

  before(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping();
    served = await serveHandler(createHandler({ workflows: { SchemaOrder }, activities, signingSecret: SECRET, serverUrl: env.address }));
    await env.registerEndpoint(QUEUE, served.url, SECRET);
  });

  after(async () => {
    await served?.close();
    await env?.teardown();
  });

  test("bad payloads are refused naming the pointer, and nothing is written", async () => {
    const { client } = env;
    await assert.rejects(client.workflow.start(SchemaOrder, { workflowId: "ts-schema-bad", taskQueue: QUEUE, args: [{ amount: "ten" }] as never }), invalid("/0/amount"));
    await assert.rejects(client.workflow.getHandle("ts-schema-bad").describe(), (e) => e instanceof ServiceError && e.status === 404);

    const handle = await client.workflow.start(SchemaOrder, { workflowId: "ts-schema-good", taskQueue: QUEUE, args: [{ amount: 10 }] });
    assert.equal(await handle.query(status), null);
    await assert.rejects(handle.signal("approve", "yes"), invalid("/0"));
    await assert.rejects(handle.executeUpdate("resize", { args: ["big"] }), invalid("/0"));
    const kinds = (await handle.fetchHistory()).events.map((e) => e.event_type);
    assert.ok(!kinds.includes("WorkflowExecutionSignaled"), kinds.join(" "));
    assert.ok(!kinds.some((k) => k.startsWith("WorkflowExecutionUpdate")), kinds.join(" "));

    assert.equal(await handle.executeUpdate(resize, { args: [3] }), 3);
    await handle.signal(approve, true);
    assert.deepEqual(await handle.result(), { amount: 10, approved: true, size: 3 });
  });
});
