/**
 * The handler's cost per push, without a server: W1's pushes (4 workflow
 * tasks, each replaying the history so far, and 3 activity tasks), signed
 * once, and answered by `createHandler` in this process through the fetch
 * handler and through the push handler the Node and Lambda adapters call,
 * one at a time and 50 at once. Where the time goes inside a push: run
 * with `--cpu-prof`.
 *
 *     npm run build && node dist/bench/push_cost.js [--rounds 2000]
 */
import { PUSH_HANDLER } from "../src/core/handler.js";
import { createHandler } from "../src/index.js";
import { sign } from "../src/core/signing.js";
import type { HistoryEvent } from "../src/common.js";
import { SECRET, W1 } from "./handler.js";

const handler = createHandler({
  workflows: { W1 },
  activities: {
    async step(n: number): Promise<number> {
      return n + 1;
    },
  },
  signingSecret: SECRET,
});

const T = "2025-01-01T00:00:00.000Z";

function ev(events: HistoryEvent[], event_type: string, attributes: Record<string, unknown>): void {
  events.push({ event_id: events.length + 1, event_time: T, event_type, attributes });
}

async function push(body: string): Promise<unknown> {
  const ts = Math.floor(Date.now() / 1000);
  const headers = { "content-type": "application/json", "webhook-id": "msg_bench", "webhook-timestamp": String(ts), "webhook-signature": await sign([SECRET], "msg_bench", ts, body) };
  const resp = await handler(new Request("http://handler.test/", { method: "POST", headers, body }));
  if (resp.status !== 200) throw new Error(`HTTP ${resp.status}`);
  return resp.json();
}

/** W1's seven push bodies, made by playing the server's part. */
async function w1Pushes(): Promise<string[]> {
  const bodies: string[] = [];
  const events: HistoryEvent[] = [];
  ev(events, "WorkflowExecutionStarted", { workflow_type: "W1", task_queue: "bench", input: [], workflow_task_timeout: "10s", attempt: 1 });
  ev(events, "WorkflowTaskScheduled", { task_queue: "bench", start_to_close_timeout: "10s", attempt: 1 });
  for (;;) {
    ev(events, "WorkflowTaskStarted", { scheduled_event_id: events.length, history_size_bytes: 0, suggest_continue_as_new: false });
    const task = { type: "workflow_task", namespace: "default", task_token: "dGFzaw", workflow_id: "w1", run_id: "0194a0f0-8c00-7000-8000-00000000a017", workflow_type: "W1", task_queue: "bench", attempt: 1, history: events, history_length: events.length, history_size_bytes: 0, suggest_continue_as_new: false };
    const body = JSON.stringify(task);
    bodies.push(body);
    const answer = (await push(body)) as { commands: { command_type: string; attributes: Record<string, unknown> }[] };
    ev(events, "WorkflowTaskCompleted", { scheduled_event_id: events.length - 1, started_event_id: events.length });
    const cmd = answer.commands[0]!;
    if (cmd.command_type !== "ScheduleActivityTask") return bodies;
    const a = cmd.attributes;
    ev(events, "ActivityTaskScheduled", { ...a, task_queue: "bench", workflow_task_completed_event_id: events.length });
    const scheduled = events.length;
    const activity = { type: "activity_task", namespace: "default", task_token: "YWN0", workflow_id: "w1", run_id: task.run_id, workflow_type: "W1", activity_id: a.activity_id, activity_type: a.activity_type, task_queue: "bench", input: a.input, attempt: 1, idempotency_key: `${task.run_id}/${String(a.activity_id)}`, scheduled_time: T, started_time: T, deadline: "2099-01-01T00:00:00.000Z" };
    const activityBody = JSON.stringify(activity);
    bodies.push(activityBody);
    const result = ((await push(activityBody)) as { result: unknown }).result;
    ev(events, "ActivityTaskStarted", { scheduled_event_id: scheduled, attempt: 1 });
    ev(events, "ActivityTaskCompleted", { scheduled_event_id: scheduled, started_event_id: scheduled + 1, result });
    ev(events, "WorkflowTaskScheduled", { task_queue: "bench", start_to_close_timeout: "10s", attempt: 1 });
  }
}

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

interface Signed {
  body: Uint8Array;
  headers: Record<string, string>;
}

async function signed(body: string): Promise<Signed> {
  const ts = Math.floor(Date.now() / 1000);
  const headers = { "content-type": "application/json", "webhook-id": "msg_bench", "webhook-timestamp": String(ts), "webhook-signature": await sign([SECRET], "msg_bench", ts, body) };
  return { body: new TextEncoder().encode(body), headers };
}

async function main(): Promise<void> {
  const rounds = Number(arg("rounds", "2000"));
  const pushes = await Promise.all((await w1Pushes()).map(signed));
  const viaFetch = async (p: Signed): Promise<number> =>
    (await handler(new Request("http://handler.test/", { method: "POST", headers: p.headers, body: p.body as BufferSource }))).status;
  const pushHandler = handler[PUSH_HANDLER]!;
  const viaPush = async (p: Signed): Promise<number> => (await pushHandler("POST", new Headers(p.headers), p.body)).status;
  for (const [path, call] of [
    ["fetch handler (Request/Response)", viaFetch],
    ["push handler (Node and Lambda adapters)", viaPush],
  ] as const) {
    for (const concurrency of [1, 50]) {
      let next = 0;
      const total = rounds * pushes.length;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < total) {
            const i = next++;
            if ((await call(pushes[i % pushes.length]!)) !== 200) throw new Error("push refused");
          }
        }),
      );
      const ms = performance.now() - t0;
      console.log(JSON.stringify({ path, concurrency, pushes: total, us_per_push: Math.round((ms * 1000) / total), w1_workflows_per_s_of_handler_cpu: Math.round((rounds * 1000) / ms) }));
    }
  }
}

await main();
