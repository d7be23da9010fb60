/** The CommonJS build: every subpath `require()`s, with the same exports as its ESM twin, and works. */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { test } from "node:test";

const require = createRequire(import.meta.url);
const SUBPATHS = ["@baton/sdk", "@baton/sdk/workflow", "@baton/sdk/activity", "@baton/sdk/client", "@baton/sdk/common", "@baton/sdk/testing"];

test("each subpath require()s from dist/cjs with the exports of its ESM build", async () => {
  for (const spec of SUBPATHS) {
    const resolved = require.resolve(spec);
    assert.match(resolved, /[/\\]dist[/\\]cjs[/\\]/, spec);
    const cjs = require(spec) as Record<string, unknown>;
    const esm = (await import(spec)) as Record<string, unknown>;
    assert.deepEqual(Object.keys(cjs).sort(), Object.keys(esm).filter((k) => k !== "default").sort(), spec);
  }
});

test("a CommonJS handler answers a signed workflow task", async () => {
  const { createHandler, sign } = require("@baton/sdk") as typeof import("../src/index.js");
  const { sleep } = require("@baton/sdk/workflow") as typeof import("../src/workflow.js");
  const secret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
  const handler = createHandler({
    workflows: {
      async Nap(): Promise<string> {
        await sleep("1h");
        return "rested";
      },
    },
    signingSecret: secret,
  });
  const t = "2025-01-01T00:00:00.000Z";
  const body = JSON.stringify({
    type: "workflow_task",
    namespace: "default",
    task_token: "t",
    workflow_id: "nap",
    run_id: "00000000-0000-4000-8000-000000000001",
    workflow_type: "Nap",
    task_queue: "q",
    attempt: 1,
    history: [
      { event_id: 1, event_time: t, event_type: "WorkflowExecutionStarted", attributes: { workflow_type: "Nap", task_queue: "q", input: [] } },
      { event_id: 2, event_time: t, event_type: "WorkflowTaskScheduled", attributes: {} },
      { event_id: 3, event_time: t, event_type: "WorkflowTaskStarted", attributes: {} },
    ],
  });
  const ts = Math.floor(Date.now() / 1000);
  const headers = { "webhook-id": "msg_cjs", "webhook-timestamp": String(ts), "webhook-signature": await sign([secret], "msg_cjs", ts, body) };
  const resp = await handler(new Request("http://handler.test/", { method: "POST", headers, body }));
  assert.equal(resp.status, 200);
  assert.deepEqual(await resp.json(), { commands: [{ command_type: "StartTimer", attributes: { timer_id: "1", start_to_fire_timeout: "3600s" } }] });
});
