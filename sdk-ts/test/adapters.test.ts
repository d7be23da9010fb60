/**
 * One suite, run against the fetch handler, the Node http adapter and the
 * Lambda adapter. Only the Node adapter calling our handler directly is
 * long-lived: it alone answers sticky and takes the next task's new events
 * (protocol.md §5.10).
 */
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

const at = "2025-01-01T00:00:00.000Z";
const event = (event_id: number, event_type: string, attributes: Record<string, unknown> = {}): Record<string, unknown> => ({ event_id, event_time: at, event_type, attributes });

/** The first workflow task of a Greeting run, from a server with the page route. */
function firstTask(runId: string): Record<string, unknown> {
  return {
    type: "workflow_task",
    namespace: "default",
    task_token: "tok1",
    workflow_id: runId,
    run_id: runId,
    workflow_type: "Greeting",
    task_queue: "q",
    attempt: 1,
    history: [event(1, "WorkflowExecutionStarted", { workflow_type: "Greeting", task_queue: "q", input: ["Ada"] }), event(2, "WorkflowTaskScheduled"), event(3, "WorkflowTaskStarted", { scheduled_event_id: 2 })],
    history_length: 3,
    history_size_bytes: 300,
    suggest_continue_as_new: false,
    history_url: "http://127.0.0.1:9/api/v1/namespaces/default/workflow-tasks/history",
  };
}

/** Its second task, sent sticky: only the events after the first task's WorkflowTaskStarted. */
function secondTask(runId: string): Record<string, unknown> {
  return {
    ...firstTask(runId),
    task_token: "tok2",
    history: [
      event(4, "WorkflowTaskCompleted", { scheduled_event_id: 2, started_event_id: 3 }),
      event(5, "ActivityTaskScheduled", { activity_id: "1", activity_type: "greet", task_queue: "q", input: ["Ada"], workflow_task_completed_event_id: 4 }),
      event(6, "ActivityTaskStarted", { scheduled_event_id: 5, attempt: 1 }),
      event(7, "ActivityTaskCompleted", { scheduled_event_id: 5, started_event_id: 6, result: "Hello, Ada" }),
      event(8, "WorkflowTaskScheduled"),
      event(9, "WorkflowTaskStarted", { scheduled_event_id: 8 }),
    ],
    history_length: 9,
    history_first_event_id: 4,
    history_reference: "ref",
  };
}

async function signed(body: string, secret = SECRET): Promise<Record<string, string>> {
  const ts = Math.floor(Date.now() / 1000);
  return {
    "content-type": "application/json",
    "webhook-id": "msg_adapter",
    "webhook-timestamp": String(ts),
    "webhook-signature": await sign([secret], "msg_adapter", ts, body),
  };
}

let runs = 0;

function testAdapter(name: string, send: Send, longLived = false): void {
  describe(`adapter: ${name}`, () => {
    test("GET describes the served workflows and activities", async () => {
      const r = await send("GET", {});
      assert.equal(r.status, 200);
      const d = JSON.parse(r.body) as { sdk: { name: string }; workflows: { name: string }[]; activities: { name: string }[] };
      assert.equal(d.sdk.name, "baton-sdk-ts");
      assert.deepEqual(d.workflows.map((w) => w.name), ["Greeting"]);
      assert.deepEqual(d.activities.map((a) => a.name), ["greet", "farewell"]);
      assert.deepEqual((d as { features?: string[] }).features, ["history_pages", "payload_references"]);
    });
    test(longLived ? "a workflow task is answered sticky, and the next one goes on from its new events" : "a workflow task is not answered sticky", async () => {
      const runId = `adapter-run-${++runs}`;
      const first = JSON.stringify(firstTask(runId));
      const r = await send("POST", await signed(first), first);
      assert.equal(r.status, 200);
      const answer = JSON.parse(r.body) as { commands: { attributes: { activity_type: string } }[]; sticky?: boolean };
      assert.deepEqual(answer.commands.map((c) => c.attributes.activity_type), ["greet"]);
      assert.equal(answer.sticky, longLived ? true : undefined);
      if (!longLived) return;
      const hits = handler.stats().stickyHits;
      const second = JSON.stringify(secondTask(runId));
      const next = JSON.parse((await send("POST", await signed(second), second)).body) as typeof answer;
      assert.deepEqual(next.commands.map((c) => c.attributes.activity_type), ["farewell"]);
      assert.equal(next.sticky, true);
      assert.equal(handler.stats().stickyHits, hits + 1);
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
for (const [name, fetchHandler, longLived] of [
  ["node http", handler as FetchHandler, true],
  ["node http, a wrapping fetch handler", wrapped, false],
] as const) {
  const served = serveHandler(fetchHandler);
  after(async () => (await served).close());
  testAdapter(
    name,
    async (method, headers, body) => {
      const init: RequestInit = { method, headers };
      if (body !== undefined) init.body = body;
      const r = await fetch((await served).url, init);
      return { status: r.status, body: await r.text() };
    },
    longLived,
  );
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
