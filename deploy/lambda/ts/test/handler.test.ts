/**
 * handler.ts behind a Lambda function URL, driven by a real `baton dev`.
 *
 * A loopback HTTP server plays the function URL: each push Baton sends
 * (signed as Baton signs every push) becomes a payload-format-2.0 event, as
 * AWS documents it for function URLs, and goes through the exported
 * `handler`; the adapter's answer (status, headers, body) is what the server
 * gets back. The workflow runs to completion that way and every answer is
 * checked. Needs the server binary (BATON_BINARY or a cargo build).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";

import type { LambdaHttpEvent, LambdaHttpResult } from "@baton/sdk";
import { TestWorkflowEnvironment } from "@baton/sdk/testing";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const URL_ID = "abcdefghijklmnopqrstuvwxyz012345";

process.env["BATON_SIGNING_SECRET"] = SECRET;
const { handler } = await import("../handler.js");
const { processOrder } = await import("../workflows.js");

/** The event a function URL invokes its function with (payload format 2.0). */
function functionUrlEvent(req: IncomingMessage, body: string): LambdaHttpEvent & Record<string, unknown> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(",") : v;
  const now = new Date();
  const path = req.url ?? "/";
  return {
    version: "2.0",
    routeKey: "$default",
    rawPath: path,
    rawQueryString: "",
    headers,
    requestContext: {
      accountId: "anonymous",
      apiId: URL_ID,
      domainName: `${URL_ID}.lambda-url.us-east-1.on.aws`,
      domainPrefix: URL_ID,
      http: { method: req.method ?? "POST", path, protocol: "HTTP/1.1", sourceIp: "127.0.0.1", userAgent: headers["user-agent"] ?? "" },
      requestId: randomUUID(),
      routeKey: "$default",
      stage: "$default",
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
    } as LambdaHttpEvent["requestContext"],
    body,
    isBase64Encoded: false,
  };
}

type Call = { event: LambdaHttpEvent; answer: LambdaHttpResult };

test("a workflow runs through the function URL adapter", async () => {
  const calls: Call[] = [];
  const url = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const event = functionUrlEvent(req, Buffer.concat(chunks).toString("utf8"));
      void handler(event).then((answer) => {
        calls.push({ event, answer });
        res.writeHead(answer.statusCode, answer.headers);
        res.end(answer.isBase64Encoded ? Buffer.from(answer.body, "base64") : answer.body);
      });
    });
  });
  await new Promise<void>((r) => url.listen(0, "127.0.0.1", r));
  const env = await TestWorkflowEnvironment.createLocal();
  let history: { event_type: string; attributes: Record<string, unknown> }[] = [];
  try {
    const port = (url.address() as AddressInfo).port;
    await env.registerEndpoint("orders-ts", `http://127.0.0.1:${port}/`, SECRET);
    const result = await env.client.workflow.execute(processOrder, {
      workflowId: "order-A-17",
      taskQueue: "orders-ts",
      args: [{ id: "A-17", amountCents: 4200 }],
    });
    assert.deepEqual(result, { reservation: "reservation-A-17", charge: "charge-A-17-4200" });
    history = (await env.client.workflow.getHandle("order-A-17").fetchHistory()).events;
  } finally {
    await env.teardown();
    url.closeAllConnections();
    await new Promise<void>((r) => url.close(() => r()));
  }

  // registerEndpoint first reads the handler's description (a GET, whose
  // input schemas it registers with the version); the rest are pushes.
  const described = calls.filter(({ event }) => event.requestContext?.http?.method === "GET");
  assert.equal(described.length, 1);
  assert.equal(described[0]!.answer.statusCode, 200, described[0]!.answer.body);
  const pushes = calls.filter((c) => c.event.requestContext?.http?.method !== "GET");
  // Inline activities (on by default): the one workflow task push runs both
  // activities in the function and commits each step with a signed
  // checkpoint; its answer records nothing more.
  assert.deepEqual(
    pushes.map(({ event }) => (JSON.parse(event.body ?? "") as { type: string }).type),
    ["workflow_task"],
  );
  const { event, answer } = pushes[0]!;
  assert.match(event.headers?.["webhook-signature"] ?? "", /^v1,/);
  assert.equal(answer.statusCode, 200, answer.body);
  assert.equal(answer.headers["content-type"], "application/json");
  assert.equal(answer.isBase64Encoded, false);
  assert.deepEqual(JSON.parse(answer.body), { checkpointed: true });
  const scheduled = history.filter((e) => e.event_type === "ActivityTaskScheduled");
  assert.deepEqual(scheduled.map((e) => e.attributes["activity_type"]), ["reserveStock", "chargeCard"]);
  assert.ok(scheduled.every((e) => e.attributes["inline"] === true));
  const completed = history.filter((e) => e.event_type === "ActivityTaskCompleted").map((e) => e.attributes["result"]);
  assert.deepEqual(completed, ["reservation-A-17", "charge-A-17-4200"]);

  // One changed body byte, or no signature: 401 before any workflow code runs.
  const forged = { ...event, body: (event.body ?? "").replace("A-17", "A-18") };
  assert.equal((await handler(forged)).statusCode, 401);
  const { ["webhook-signature"]: _dropped, ...unsignedHeaders } = event.headers ?? {};
  assert.equal((await handler({ ...event, headers: unsignedHeaders })).statusCode, 401);
  // A base64 body is decoded before the signature check and runs the
  // workflow code: with the server gone, its first checkpoint fails and the
  // push is answered with the task's commands instead.
  const encoded = { ...event, body: Buffer.from(event.body ?? "", "utf8").toString("base64"), isBase64Encoded: true };
  const again = await handler(encoded);
  assert.equal(again.statusCode, 200);
  type Commands = { commands: { command_type: string; attributes: Record<string, unknown> }[] };
  const commands = (JSON.parse(again.body) as Commands).commands;
  assert.deepEqual(commands.map((c) => c.command_type), ["ScheduleActivityTask"]);
  assert.equal(commands[0]!.attributes["activity_type"], "reserveStock");
});
