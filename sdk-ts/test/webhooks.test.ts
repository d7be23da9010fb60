/**
 * Inbound webhook sources end to end (`client.webhook.create/list/describe/
 * deliveries/replay/delete`) against a real `baton dev`, whose workflows a
 * handler on loopback runs: a Stripe-signed `payment_intent.succeeded`
 * delivered three times and replayed signals the waiting workflow once; a
 * forged one is refused and logged; a bad rule is a 400 naming the field.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { type Client, ServiceError, type WebhookDelivery } from "../src/client.js";
import { createHandler } from "../src/index.js";
import { type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { condition, defineSignal, setHandler } from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const STRIPE_SECRET = "whsec_ts_stripe";
const QUEUE = "ts-webhooks";
const paid = defineSignal<[{ id: string; amount: number }]>("paid");
const ship = defineSignal("ship");

export async function Order(): Promise<{ id: string; amount: number }[]> {
  const payments: { id: string; amount: number }[] = [];
  let shipped = false;
  setHandler(paid, (p) => {
    payments.push(p);
  });
  setHandler(ship, () => {
    shipped = true;
  });
  await condition(() => shipped);
  return payments;
}

function stripeSignature(body: string, t: number): string {
  return `t=${t},v1=${createHmac("sha256", STRIPE_SECRET).update(`${t}.${body}`).digest("hex")}`;
}

describe("webhook sources", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  let served: ServedHandler;
  let client: Client;

  before(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping();
    served = await serveHandler(createHandler({ workflows: { Order }, signingSecret: SECRET }));
    await env.registerEndpoint(QUEUE, served.url, SECRET);
    client = env.client;
  });

  after(async () => {
    await served?.close();
    await env?.teardown();
  });

  test("a Stripe payment signals the waiting workflow once", async () => {
    const handle = await client.workflow.start(Order, { workflowId: "ts-order-pi_7", taskQueue: QUEUE });
    const source = await client.webhook.create({
      sourceId: "stripe",
      scheme: "stripe",
      secrets: [STRIPE_SECRET],
      rules: [
        {
          name: "paid",
          events: ["payment_intent.succeeded"],
          action: { type: "signal", workflow_id: "ts-order-{/data/object/id}", signal: "paid", input: "{/data/object}" },
        },
      ],
    });
    assert.equal(source.secret_count, 1);
    assert.deepEqual((await client.webhook.list()).map((s) => s.source_id), ["stripe"]);
    assert.equal((await client.webhook.describe("stripe")).rules[0]?.name, "paid");

    const body = JSON.stringify({ id: "evt_7", type: "payment_intent.succeeded", data: { object: { id: "pi_7", amount: 70 } } });
    const post = (signature: string, payload: string) =>
      fetch(`${env.address}${source.url}`, {
        method: "POST",
        headers: { "content-type": "application/json", "stripe-signature": signature },
        body: payload,
      });
    const now = Math.floor(Date.now() / 1000);
    for (let i = 0; i < 3; i++) {
      const resp = await post(stripeSignature(body, now - i), body);
      assert.equal(resp.status, 200);
      assert.equal(((await resp.json()) as WebhookDelivery).outcome, "acted");
    }
    const forged = await post(stripeSignature(body, now), body.replace("70", "7"));
    assert.equal(forged.status, 401);

    const log: WebhookDelivery[] = [];
    for await (const d of client.webhook.deliveries("stripe", { pageSize: 3 })) log.push(d);
    assert.deepEqual(log.map((d) => d.outcome), ["refused", "acted", "acted", "acted"]);
    const oldest = log[3]?.delivery ?? "";
    const replayed = await client.webhook.replay("stripe", oldest);
    assert.deepEqual([replayed.outcome, replayed.replay_of], ["acted", oldest]);

    await handle.signal(ship);
    assert.deepEqual(await handle.result(), [{ id: "pi_7", amount: 70 }]);

    await assert.rejects(
      client.webhook.create({
        sourceId: "bad",
        scheme: "github",
        secrets: ["s"],
        rules: [{ name: "r", action: { type: "signal", workflow_id: "{id}", signal: "s" } }],
      }),
      (e: unknown) => e instanceof ServiceError && e.status === 400 && e.message.includes("rules/0/action/workflow_id"),
    );
    await client.webhook.delete("stripe");
    await assert.rejects(client.webhook.describe("stripe"), (e: unknown) => e instanceof ServiceError && e.status === 404);
  });
});
