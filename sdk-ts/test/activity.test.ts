import assert from "node:assert/strict";
import { test } from "node:test";
import { Context } from "../src/activity.js";
import { createHandler } from "../src/index.js";
import { sign } from "../src/core/signing.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

async function push(handler: (r: Request) => Promise<Response>, body: unknown): Promise<{ status: number; json: unknown }> {
  const text = JSON.stringify(body);
  const ts = Math.floor(Date.now() / 1000);
  const headers = { "webhook-id": "msg_a", "webhook-timestamp": String(ts), "webhook-signature": await sign([SECRET], "msg_a", ts, text) };
  const r = await handler(new Request("http://h.test/", { method: "POST", headers, body: text }));
  return { status: r.status, json: r.status === 200 ? await r.json() : null };
}

function activityTask(activityType: string, deadline: Date, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: "activity_task",
    namespace: "default",
    task_token: "tok-1",
    workflow_id: "w",
    run_id: "r",
    workflow_type: "W",
    activity_id: "7",
    activity_type: activityType,
    task_queue: "q",
    input: [],
    attempt: 2,
    idempotency_key: "r/7",
    scheduled_time: "2025-01-01T00:00:00.000Z",
    started_time: "2025-01-01T00:00:00.000Z",
    deadline: deadline.toISOString(),
    ...extra,
  };
}

test("Context.current() follows the activity across awaits and carries the attempt's info", async () => {
  const handler = createHandler({
    signingSecret: SECRET,
    activities: {
      async info(): Promise<unknown> {
        await new Promise((r) => setTimeout(r, 5));
        const i = Context.current().info;
        return [i.attempt, i.idempotencyKey, i.taskToken, i.heartbeatDetails, i.heartbeatTimeoutMs, i.workflowExecution.workflowId];
      },
    },
  });
  const r = await push(handler, activityTask("info", new Date(Date.now() + 60_000), { heartbeat_timeout: "10s", heartbeat_details: [{ page: 3 }] }));
  assert.deepEqual(r.json, { result: [2, "r/7", "tok-1", { page: 3 }, 10_000, "w"] });
});

test("the cancellation signal fires at the attempt's deadline", async () => {
  const handler = createHandler({
    signingSecret: SECRET,
    activities: {
      async slow(): Promise<string> {
        await Context.current().sleep("10s");
        return "finished";
      },
    },
  });
  const r = await push(handler, activityTask("slow", new Date(Date.now() + 150)));
  assert.equal(r.status, 200);
  assert.deepEqual(
    { ...(r.json as { failure: Record<string, unknown> }).failure, stack_trace: undefined },
    { message: "the activity attempt's deadline passed", kind: "TIMEOUT", type: "TimeoutError", timeout_type: "START_TO_CLOSE", stack_trace: undefined },
  );
});
