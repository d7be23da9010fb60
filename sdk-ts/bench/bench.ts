/**
 * W1/W2/W3 (src/bin/bench.rs) with the workflows and activities written in
 * TypeScript and served by the SDK on Node (one process), against
 * `baton serve` on PostgreSQL (DATABASE_URL) or, with `--sqlite`,
 * `baton dev --db :memory:`. The load driver (this process) uses the client.
 *
 *     npm run build && node dist/bench/bench.js [--workloads W1,W2,W3] [--scale 1] [--sqlite]
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Client, Connection } from "../src/client.js";
import { findBatonBinary } from "../src/testing.js";
import { SECRET } from "./handler.js";

const WORKLOADS: Record<string, [number, number, number]> = { W1: [2000, 50, 0], W2: [200, 1, 0], W3: [500, 100, 1000] };

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
}

function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(")").pop()!.trim().split(" ");
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`${url} did not come up`);
}

async function main(): Promise<void> {
  const scale = Number(arg("scale", "1"));
  const sqlite = process.argv.includes("--sqlite");
  const port = 20000 + Math.floor(Math.random() * 20000);
  const appPort = port + 1;
  const binary = findBatonBinary();
  const procs: ChildProcess[] = [];
  let dbName: string | undefined;
  const dbUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  let serverArgs = ["dev", "--db", ":memory:", "--listen", `127.0.0.1:${port}`];
  if (!sqlite) {
    dbName = `baton_tsbench_${Math.random().toString(16).slice(2, 10)}`;
    execFileSync("psql", [dbUrl, "-qc", `create database ${dbName}`]);
    serverArgs = ["serve", "--database-url", `${dbUrl.replace(/\/[^/]*$/, "")}/${dbName}`, "--listen", `127.0.0.1:${port}`];
  }
  try {
    procs.push(spawn(binary, serverArgs, { stdio: "ignore", env: { ...process.env, RUST_LOG: "warn" } }));
    procs.push(spawn(process.execPath, [fileURLToPath(new URL("./handler.js", import.meta.url)), String(appPort)], { stdio: "inherit" }));
    const target = `http://127.0.0.1:${port}`;
    const appUrl = `http://127.0.0.1:${appPort}/`;
    await waitHttp(`${target}/healthz`);
    await waitHttp(appUrl);
    const client = new Client({ connection: await Connection.connect({ address: target }) });
    await client.connection.call("POST", "/api/v1/namespaces/default/endpoints", { task_queue: "bench", url: appUrl, secrets: [SECRET] });
    for (const name of arg("workloads", "W1,W2,W3").split(",")) {
      const [n, inFlight, baseline] = WORKLOADS[name]!;
      const count = Math.max(1, Math.floor(n * scale));
      const run = Math.random().toString(16).slice(2, 10);
      const latencies: number[] = [];
      const cpu0 = procs.map((p) => cpuSeconds(p.pid!));
      const before = (await (await fetch(`${appUrl}stats`)).json()) as { requests: number; handle_ms: number };
      const t0 = performance.now();
      let next = 0;
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (next < count) {
            const i = next++;
            const t = performance.now();
            await client.workflow.execute(name, { workflowId: `${name}-${run}-${i}`, taskQueue: "bench" });
            latencies.push(performance.now() - t - baseline);
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      const after = (await (await fetch(`${appUrl}stats`)).json()) as { requests: number; handle_ms: number };
      latencies.sort((a, b) => a - b);
      const q = (p: number): number => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))]! * 10) / 10;
      const cpu1 = procs.map((p) => cpuSeconds(p.pid!));
      console.log(
        JSON.stringify({
          workload: name,
          workflows: count,
          in_flight: inFlight,
          seconds: Math.round(seconds * 100) / 100,
          workflows_per_s: Math.round((count / seconds) * 10) / 10,
          latency_ms: { p50: q(0.5), p90: q(0.9), p99: q(0.99) },
          cpu_ms_per_wf_server: Math.round(((cpu1[0]! - cpu0[0]!) * 1000) / count * 100) / 100,
          cpu_ms_per_wf_handler: Math.round(((cpu1[1]! - cpu0[1]!) * 1000) / count * 100) / 100,
          handler_ms_per_push: Math.round(((after.handle_ms - before.handle_ms) / Math.max(1, after.requests - before.requests)) * 1000) / 1000,
          pushes_per_workflow: Math.round(((after.requests - before.requests) / count) * 10) / 10,
        }),
      );
    }
  } finally {
    for (const p of procs.reverse()) p.kill();
    if (dbName) {
      await new Promise((r) => setTimeout(r, 500));
      try {
        execFileSync("psql", [dbUrl, "-qc", `drop database if exists ${dbName}`]);
      } catch {
        // best effort
      }
    }
  }
}

await main();
