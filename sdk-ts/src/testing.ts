/**
 * Testing helpers (`@baton/sdk/testing`, mirroring `@temporalio/testing`):
 * a local `baton dev` server with time skipping, a loopback server for a
 * handler, and a replayer for exported histories. Node only.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { toNodeListener } from "./adapters/node.js";
import { Client, Connection } from "./client.js";
import { type Duration, type HistoryEvent, NonDeterminismError, failureToError, formatDuration } from "./common.js";
import type { FetchHandler } from "./core/handler.js";
import type * as wire from "./generated/openapi.js";
import { holdsReferences } from "./core/payloads.js";
import { type WorkflowFunction, handleWorkflowTask } from "./core/workflow_instance.js";

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function repoRootFrom(start: string): string | undefined {
  let dir = path.resolve(start);
  for (;;) {
    if (existsSync(path.join(dir, "Cargo.toml"))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** `BATON_BINARY`, else the newest `target/{debug,release}/baton` of the repository (or `CARGO_TARGET_DIR`). */
export function findBatonBinary(): string {
  const env = process.env.BATON_BINARY;
  if (env) return env;
  const targets: string[] = [];
  if (process.env.CARGO_TARGET_DIR) targets.push(process.env.CARGO_TARGET_DIR);
  for (const start of [process.cwd(), path.dirname(process.argv[1] ?? process.cwd())]) {
    const root = repoRootFrom(start);
    if (root) targets.push(path.join(root, "target"));
  }
  const found = targets
    .flatMap((t) => ["debug", "release"].map((p) => path.join(t, p, "baton")))
    .filter(executable)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (found[0]) return found[0];
  throw new Error("no baton binary: set BATON_BINARY or run `cargo build --bin baton`");
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** A handler served over HTTP on loopback (what the server pushes to in tests). */
export interface ServedHandler {
  url: string;
  close(): Promise<void>;
}

export async function serveHandler(handler: FetchHandler): Promise<ServedHandler> {
  const server: Server = createServer(toNodeListener(handler));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface LocalEnvironmentOptions {
  timeSkipping?: boolean;
  /** Extra `baton dev` arguments. */
  args?: string[];
  startupTimeoutMs?: number;
}

/** A throwaway `baton dev --db :memory:` on a free loopback port, with a client. */
export class TestWorkflowEnvironment {
  private constructor(
    private readonly process: ChildProcess,
    readonly address: string,
    readonly client: Client,
    readonly supportsTimeSkipping: boolean,
  ) {}

  static async createLocal(options: LocalEnvironmentOptions = {}): Promise<TestWorkflowEnvironment> {
    const exe = findBatonBinary();
    const port = await freePort();
    const args = ["dev", "--db", ":memory:", "--listen", `127.0.0.1:${port}`, ...(options.args ?? [])];
    if (options.timeSkipping && !args.includes("--time-skipping")) args.push("--time-skipping");
    const child = spawn(exe, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (c: Buffer) => {
      stderr = (stderr + c.toString()).slice(-4000);
    });
    const address = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + (options.startupTimeoutMs ?? 20_000);
    let last = "";
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`baton dev exited with ${child.exitCode}: ${stderr}`);
      try {
        const r = await fetch(`${address}/readyz`);
        if (r.ok) {
          const client = new Client({ connection: await Connection.connect({ address }) });
          return new TestWorkflowEnvironment(child, address, client, args.includes("--time-skipping"));
        }
        last = `HTTP ${r.status}`;
      } catch (err) {
        last = String(err);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill();
    throw new Error(`baton dev did not answer on ${address}: ${last}; ${stderr}`);
  }

  /** {@link createLocal} with `--time-skipping`: timers fire when {@link skipTime} moves the clock. */
  static async createTimeSkipping(options: Omit<LocalEnvironmentOptions, "timeSkipping"> = {}): Promise<TestWorkflowEnvironment> {
    return TestWorkflowEnvironment.createLocal({ ...options, timeSkipping: true });
  }

  /** Moves the server's clock forward; timers and timeouts due by then fire at once. */
  async skipTime(duration: Duration): Promise<void> {
    const body: wire.SkipTimeRequest = { duration: formatDuration(duration) };
    await this.client.connection.call("POST", "/api/v1/dev/time/skip", body);
  }

  /** Moves the server's clock to its earliest pending timer or timeout. */
  async skipToNextTimer(): Promise<void> {
    const body: wire.SkipTimeRequest = { to_next_timer: true };
    await this.client.connection.call("POST", "/api/v1/dev/time/skip", body);
  }

  /**
   * Registers `url` as the endpoint of `taskQueue` (as `version`, if given:
   * it becomes the queue's current version, which new runs are pinned to),
   * with the protocol features its description lists and the input schemas
   * it publishes unless `schemas` is false.
   */
  async registerEndpoint(taskQueue: string, url: string, secrets: string | string[], options: { version?: string; schemas?: boolean } = {}): Promise<wire.RegisteredEndpoint> {
    const body: wire.RegisterEndpointRequest = { task_queue: taskQueue, url, secrets: Array.isArray(secrets) ? secrets : [secrets] };
    if (options.version !== undefined) body.version = options.version;
    // What the handler's description publishes, as `baton endpoint register` sends it.
    const described = await fetch(url, { signal: AbortSignal.timeout(5000) });
    const description = described.ok ? ((await described.json()) as { schemas?: wire.EndpointSchemas; features?: string[] }) : {};
    if (description.features !== undefined) body.features = description.features;
    if (options.schemas !== false && description.schemas !== undefined) body.schemas = description.schemas;
    return (await this.client.connection.call("POST", `/api/v1/namespaces/${this.client.namespace}/endpoints`, body)).json as wire.RegisteredEndpoint;
  }

  async teardown(): Promise<void> {
    const p = this.process;
    if (p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        p.kill("SIGKILL");
      }, 5000);
      p.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
      p.kill("SIGTERM");
    });
  }
}

/**
 * An exported history: `{workflow_id?, run_id?, events: [...]}` (as
 * `fetchHistory` and `GET …/history` give it) or a bare event list. With a
 * `run_id`, `Math.random` and `uuid4` replay the same values as the run.
 */
export type History = { workflow_id?: string; run_id?: string; events: HistoryEvent[] } | HistoryEvent[];

/** Replays exported histories against workflow code, like Temporal's `Worker.runReplayHistory`. */
export class Replayer {
  constructor(private readonly workflows: Record<string, unknown>) {}

  /** Throws {@link NonDeterminismError} if the code no longer produces the history, or the error a replayed task hit. */
  async replay(history: History, workflowId?: string): Promise<void> {
    const events = Array.isArray(history) ? history : history.events;
    const wid = workflowId ?? (Array.isArray(history) ? undefined : history.workflow_id) ?? "replay";
    const runId = (Array.isArray(history) ? undefined : history.run_id) ?? "replay";
    const first = events[0];
    if (!first || first.event_type !== "WorkflowExecutionStarted") throw new Error("history must start with WorkflowExecutionStarted");
    if (holdsReferences(events)) {
      throw new Error("the history holds payloads by reference where replay reads them (docs/protocol.md §9.1): fetch it with WorkflowHandle.fetchHistory(), which puts them in place");
    }
    const attrs = first.attributes as { workflow_type?: string; task_queue?: string };
    const type = String(attrs.workflow_type);
    const fn = this.workflows[type];
    if (typeof fn !== "function") throw new Error(`workflow type ${JSON.stringify(type)} is not among the replayer's workflows`);
    const answer = await handleWorkflowTask(fn as WorkflowFunction, {
      type: "workflow_task",
      namespace: "default",
      task_token: "replay",
      workflow_id: wid,
      run_id: runId,
      workflow_type: type,
      task_queue: String(attrs.task_queue ?? "replay"),
      attempt: 1,
      history: events,
    });
    if ("failure" in answer) {
      const f = answer.failure.failure;
      if (answer.failure.cause === "NON_DETERMINISTIC_ERROR") {
        throw new NonDeterminismError(f.message, undefined, "", "");
      }
      throw failureToError(f);
    }
  }
}
