/**
 * W3C trace context end to end with `@opentelemetry/api` installed (and
 * AsyncLocalStorage as its context manager, as an OpenTelemetry SDK would
 * register): a client call made in an active span context sends its
 * `traceparent`, `baton dev` stores it with the run and pushes it, and the
 * handler runs the activity in that trace. Without an active span nothing
 * is sent.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ROOT_CONTEXT, TraceFlags, context, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { createHandler } from "../src/index.js";
import { type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { proxyActivities } from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const QUEUE = "ts-traced";

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

/** The span context each activity ran in, by its argument. */
const seen = new Map<string, { traceId: string; spanId: string } | undefined>();

const activities = {
  async tracedStep(key: string): Promise<string> {
    const sc = trace.getSpanContext(context.active());
    seen.set(key, sc ? { traceId: sc.traceId, spanId: sc.spanId } : undefined);
    return key;
  },
};

const acts = proxyActivities<typeof activities>({ startToCloseTimeout: "10s" });

export async function Traced(key: string): Promise<string> {
  return acts.tracedStep(key);
}

describe("trace context", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  let served: ServedHandler;

  before(async () => {
    env = await TestWorkflowEnvironment.createLocal();
    served = await serveHandler(createHandler({ workflows: { Traced }, activities, signingSecret: SECRET }));
    await env.registerEndpoint(QUEUE, served.url, SECRET);
  });

  after(async () => {
    await served?.close();
    await env?.teardown();
  });

  test("activities run in the trace of the client call that started the run, many runs at once", async () => {
    const keys = Array.from({ length: 10 }, (_, i) => `traced-${i}`);
    const traces = new Map<string, { traceId: string; spanId: string }>();
    const results = await Promise.all(
      keys.map((key) => {
        const sc = { traceId: randomBytes(16).toString("hex"), spanId: randomBytes(8).toString("hex"), traceFlags: TraceFlags.SAMPLED, isRemote: false };
        traces.set(key, sc);
        return context.with(trace.setSpanContext(ROOT_CONTEXT, sc), () =>
          env.client.workflow.execute(Traced, { workflowId: key, taskQueue: QUEUE, args: [key] }),
        );
      }),
    );
    assert.deepEqual(results, keys);
    for (const key of keys) {
      const ran = seen.get(key);
      assert.ok(ran, `${key} ran outside any trace`);
      assert.equal(ran.traceId, traces.get(key)?.traceId, key);
      // The parent is the server's push span, not the client's span.
      assert.notEqual(ran.spanId, traces.get(key)?.spanId, key);
    }
  });

  test("no active span: no trace", async () => {
    assert.equal(trace.getSpanContext(context.active()), undefined);
    assert.equal(await env.client.workflow.execute(Traced, { workflowId: "untraced", taskQueue: QUEUE, args: ["untraced"] }), "untraced");
    assert.ok(seen.has("untraced"));
    assert.equal(seen.get("untraced"), undefined);
  });
});
