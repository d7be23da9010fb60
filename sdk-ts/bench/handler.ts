/** The benchmark's handler process: W1/W2/W3 of src/bin/bench.rs written with the SDK, on Node's http server. */
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";
import { createHandler, toNodeListener } from "../src/index.js";
import { proxyActivities, sleep } from "../src/workflow.js";

export const SECRET = "whsec_YmF0b24tYmVuY2htYXJrLXNlY3JldC1rZXktMzI=";

const activities = {
  async step(n: number): Promise<number> {
    return n + 1;
  },
};
const { step } = proxyActivities<typeof activities>({ startToCloseTimeout: "30s" });

export async function W1(): Promise<number> {
  let n = 0;
  for (let i = 0; i < 3; i++) n = await step(n);
  return n;
}
export async function W2(): Promise<number> {
  return step(0);
}
export async function W3(): Promise<string> {
  await sleep("1s");
  return "woke";
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const listener = toNodeListener(createHandler({ workflows: { W1, W2, W3 }, activities, signingSecret: SECRET }));
  const stats = { requests: 0, handle_ms: 0 };
  // Timed around the Node adapter, so the adapter's direct path is what is measured.
  createServer((req, res) => {
    if (req.method === "GET" && req.url === "/stats") {
      res.setHeader("content-type", "application/json");
      res.end(JSON.stringify(stats));
      return;
    }
    const t = performance.now();
    res.on("finish", () => {
      stats.requests++;
      stats.handle_ms += performance.now() - t;
    });
    listener(req, res);
  }).listen(Number(process.argv[2]), "127.0.0.1");
}
