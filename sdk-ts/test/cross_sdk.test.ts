/**
 * TypeScript and Python on one server: a TypeScript workflow calls an
 * activity served by sdk-py on another task queue, and a Python workflow
 * calls a TypeScript activity. Needs the baton binary and sdk-py's venv
 * (scripts/test.sh builds both before the TypeScript suite); skipped
 * without them.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { createHandler } from "../src/index.js";
import { type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { proxyActivities } from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY } from "./e2e_helpers.js";
import { REPO_ROOT } from "./paths.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const TS_QUEUE = "cross-ts";
const PY_QUEUE = "cross-py";

const venv = process.env.BATON_PY_VENV ?? path.join(REPO_ROOT, "sdk-py", ".venv");
const python = path.join(venv, "bin", "python");
const skip: string | false = SKIP_WITHOUT_BINARY || (existsSync(python) ? false : `no sdk-py venv at ${venv}`);

// The Python side, inline (served by sdk-py's AppServer on a free port; prints its URL).
const PY_APP = `
import sys
from datetime import timedelta
from baton import App, activity, workflow
from baton.testing import AppServer

@activity.defn
async def shout(text: str) -> str:
    return text.upper() + "!"

@workflow.defn
class PyGreeting:
    @workflow.run
    async def run(self, name: str) -> str:
        hello = await workflow.execute_activity(
            "ts_greet", name, task_queue=${JSON.stringify(TS_QUEUE)}, start_to_close_timeout=timedelta(seconds=10)
        )
        return "py workflow: " + hello

app = App(workflows=[PyGreeting], activities=[shout], signing_secret=${JSON.stringify(SECRET)})
with AppServer(app) as server:
    print(server.url, flush=True)
    sys.stdin.read()
`;

const activities = {
  async ts_greet(name: string): Promise<string> {
    return `Hello from TypeScript, ${name}`;
  },
};

const py = proxyActivities<{ shout(text: string): Promise<string> }>({ startToCloseTimeout: "10s", taskQueue: PY_QUEUE });

async function CrossGreeting(name: string): Promise<string> {
  return `ts workflow: ${await py.shout(name)}`;
}

describe("cross-SDK: TypeScript and Python on one server", { skip }, () => {
  let env: TestWorkflowEnvironment;
  let served: ServedHandler;
  let child: ChildProcess;

  before(async () => {
    env = await TestWorkflowEnvironment.createLocal();
    served = await serveHandler(createHandler({ workflows: { CrossGreeting }, activities, signingSecret: SECRET }));
    await env.registerEndpoint(TS_QUEUE, served.url, SECRET);
    child = spawn(python, ["-c", PY_APP], { stdio: ["pipe", "pipe", "inherit"], cwd: REPO_ROOT });
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout?.on("data", (c: Buffer) => {
        out += c.toString();
        const line = out.split("\n")[0];
        if (out.includes("\n") && line) resolve(line.trim());
      });
      child.once("exit", (code) => reject(new Error(`python exited with ${code}`)));
    });
    await env.registerEndpoint(PY_QUEUE, url, SECRET);
  });

  after(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.stdin?.end();
      const t = setTimeout(() => child.kill(), 5000);
      await exited;
      clearTimeout(t);
    }
    await served?.close();
    await env?.teardown();
  });

  test("a TypeScript workflow calls a Python activity", async () => {
    const result = await env.client.workflow.execute(CrossGreeting, { workflowId: "cross-ts-wf", taskQueue: TS_QUEUE, args: ["ada"] });
    assert.equal(result, "ts workflow: ADA!");
  });

  test("a Python workflow calls a TypeScript activity", async () => {
    const result = await env.client.workflow.execute("PyGreeting", { workflowId: "cross-py-wf", taskQueue: PY_QUEUE, args: ["Ada"] });
    assert.equal(result, "py workflow: Hello from TypeScript, Ada");
  });
});
