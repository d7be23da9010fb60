/**
 * The CPU and wall time of one SDK HTTP call (src/core/http.ts) through each
 * transport: a checkpoint-sized signed POST and its JSON answer, against a
 * Node http server in a child process (so only the caller's CPU is
 * counted), one at a time and 50 at once, after a warm-up.
 *
 *     npm run build && node dist/bench/http_cost.js [--calls 3000]
 */
import { fork } from "node:child_process";
import { createServer } from "node:http";
import { type Transport, httpCallVia } from "../src/core/http.js";

const ANSWER = JSON.stringify({
  continued: true,
  continuation_token: "c".repeat(240),
  server_time: "2026-01-01T00:00:00.000Z",
  events: [{ event_id: 7, event_time: "2026-01-01T00:00:00.000Z", event_type: "ActivityTaskScheduled", attributes: { activity_id: "2", activity_type: "step", input: [2, "x"] } }],
  activity_tasks: [{ activity_id: "2", task_token: "t".repeat(320), attempt: 1 }],
});

if (process.argv[2] === "serve") {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(ANSWER) });
      res.end(ANSWER);
    });
  });
  server.listen(0, "127.0.0.1", () => {
    const a = server.address();
    process.send?.(typeof a === "object" && a !== null ? a.port : 0);
  });
} else {
  const i = process.argv.indexOf("--calls");
  const calls = i > 0 ? Number(process.argv[i + 1]) : 3000;
  const child = fork(new URL(import.meta.url).pathname, ["serve"]);
  const port = await new Promise<number>((r) => child.once("message", (m) => r(Number(m))));
  const url = `http://127.0.0.1:${port}/api/v1/namespaces/default/workflow-tasks/checkpoint`;
  const body = JSON.stringify({
    task_token: "t".repeat(320),
    completions: [{ task_token: "a".repeat(320), result: { step: 1, input: "x" } }],
    commands: [{ command_type: "ScheduleActivityTask", attributes: { activity_id: "2", activity_type: "step", input: [2, "x"], start_to_close_timeout: "30s" } }],
    inline: ["2"],
    workflow_time: "2026-01-01T00:00:00.000Z",
  });
  const headers = { "content-type": "application/json", "webhook-id": "msg_0123456789abcdef", "webhook-timestamp": "1767225600", "webhook-signature": `v1,${"s".repeat(44)}` };
  const call = async (t: Transport): Promise<void> => {
    const a = await httpCallVia(t, "POST", url, headers, body, 10_000);
    JSON.parse(a.text);
  };
  for (const inFlight of [1, 50]) {
    for (const t of ["fetch", "node"] as Transport[]) {
      for (let w = 0; w < 500; w++) await call(t);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          for (let n = 0; n < calls / inFlight; n++) await call(t);
        }),
      );
      const cpu = process.cpuUsage(cpu0);
      const wall = performance.now() - t0;
      console.log(JSON.stringify({ transport: t, in_flight: inFlight, calls, cpu_us_per_call: Math.round((cpu.user + cpu.system) / calls), wall_us_per_call: Math.round((wall * 1000) / calls) }));
    }
  }
  child.kill();
}
