/** One suite, run against the fetch handler, the Node http adapter and the Lambda adapter. */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { createHandler, toLambdaHandler, type FetchHandler } from "../src/index.js";
import { sign } from "../src/core/signing.js";
import { serveHandler } from "../src/testing.js";
import { Greeting, greetingActivities } from "./features.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

interface Reply {
  status: number;
  body: string;
}
type Send = (method: string, headers: Record<string, string>, body?: string) => Promise<Reply>;

const handler = createHandler({ workflows: { Greeting }, activities: greetingActivities, signingSecret: SECRET });

const activityPush = {
  type: "activity_task",
  namespace: "default",
  task_token: "tok",
  workflow_id: "w",
  run_id: "r",
  workflow_type: "Greeting",
  activity_id: "1",
  activity_type: "greet",
  task_queue: "q",
  input: ["Ada ✓"],
  attempt: 1,
  idempotency_key: "r/1",
  scheduled_time: "2025-01-01T00:00:00.000Z",
  started_time: "2025-01-01T00:00:00.000Z",
  deadline: "2099-01-01T00:00:00.000Z",
};

async function signed(body: string, secret = SECRET): Promise<Record<string, string>> {
  const ts = Math.floor(Date.now() / 1000);
  return {
    "content-type": "application/json",
    "webhook-id": "msg_adapter",
    "webhook-timestamp": String(ts),
    "webhook-signature": await sign([secret], "msg_adapter", ts, body),
  };
}

function testAdapter(name: string, send: Send): void {
  describe(`adapter: ${name}`, () => {
    test("GET describes the served workflows and activities", async () => {
      const r = await send("GET", {});
      assert.equal(r.status, 200);
      const d = JSON.parse(r.body) as { sdk: { name: string }; workflows: { name: string }[]; activities: { name: string }[] };
      assert.equal(d.sdk.name, "baton-sdk-ts");
      assert.deepEqual(d.workflows.map((w) => w.name), ["Greeting"]);
      assert.deepEqual(d.activities.map((a) => a.name), ["greet", "farewell"]);
    });
    test("a signed activity push runs (UTF-8 intact)", async () => {
      const body = JSON.stringify(activityPush);
      const r = await send("POST", await signed(body), body);
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body), { result: "Hello, Ada ✓" });
    });
    test("unsigned and forged pushes get 401", async () => {
      const body = JSON.stringify(activityPush);
      assert.equal((await send("POST", { "content-type": "application/json" }, body)).status, 401);
      const forged = await signed(body, "whsec_//////////////////////////////////////////8=");
      assert.equal((await send("POST", forged, body)).status, 401);
    });
    test("a signed push that is not JSON gets 400", async () => {
      const r = await send("POST", await signed("not json"), "not json");
      assert.equal(r.status, 400);
    });
  });
}

testAdapter("fetch", async (method, headers, body) => {
  const init: RequestInit = { method, headers };
  if (body !== undefined) init.body = body;
  const r = await handler(new Request("http://h.test/baton", init));
  return { status: r.status, body: await r.text() };
});

// Any other fetch handler (one that wraps ours) goes through Request and Response.
const wrapped: FetchHandler = (req) => handler(req);
for (const [name, fetchHandler] of [
  ["node http", handler as FetchHandler],
  ["node http, a wrapping fetch handler", wrapped],
] as const) {
  const served = serveHandler(fetchHandler);
  after(async () => (await served).close());
  testAdapter(name, async (method, headers, body) => {
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = body;
    const r = await fetch((await served).url, init);
    return { status: r.status, body: await r.text() };
  });
}

for (const [name, lambda] of [
  ["lambda (function URL / API Gateway v2, base64 body)", toLambdaHandler(handler)],
  ["lambda, a wrapping fetch handler", toLambdaHandler(wrapped)],
] as const) {
  testAdapter(name, async (method, headers, body) => {
    // The shape of a real function URL event.
    const event = {
      version: "2.0",
      routeKey: "$default",
      rawPath: "/",
      rawQueryString: "",
      headers: { ...headers, host: "abc.lambda-url.eu-west-1.on.aws", "x-forwarded-proto": "https" },
      requestContext: {
        accountId: "anonymous",
        apiId: "abc",
        domainName: "abc.lambda-url.eu-west-1.on.aws",
        http: { method, path: "/", protocol: "HTTP/1.1", sourceIp: "1.2.3.4", userAgent: "baton/0.1.0" },
        requestId: "id",
        routeKey: "$default",
        stage: "$default",
        time: "01/Jan/2025:00:00:00 +0000",
        timeEpoch: 1735689600000,
      },
      body: body === undefined ? undefined : Buffer.from(body, "utf8").toString("base64"),
      isBase64Encoded: body !== undefined,
    };
    const r = await lambda(event);
    return { status: r.statusCode, body: r.body };
  });
}
