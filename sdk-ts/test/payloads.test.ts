/**
 * Payloads by reference (protocol.md §9.1), src/core/payloads.ts and where
 * the handler and the client use it, against real loopback HTTP servers
 * that play the server's signed payload route (verifying each request's
 * signature), its page route and its REST routes: what is a reference,
 * that only the positions replay reads are put in place, batches of at
 * most 100 digests, answers that leave some out, and the handler's pushes
 * (workflow tasks whole, paged and sticky, activity tasks) and the client's
 * fetched history.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import { after, describe, test } from "node:test";
import { Client, Connection } from "../src/client.js";
import type { HistoryEvent } from "../src/common.js";
import { type FetchPayloads, MAX_DIGESTS_PER_CALL, type Payloads, eventPositions, fetchAll, payloadsUrlBeside, referenceDigest, resolveEvents, signedFetcher } from "../src/core/payloads.js";
import { sign, verify } from "../src/core/signing.js";
import { PUSH_HANDLER } from "../src/core/handler.js";
import { createHandler } from "../src/index.js";
import { Replayer } from "../src/testing.js";
import { condition, defineSignal, proxyActivities, proxyLocalActivities, setHandler } from "../src/workflow.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const RUN = "0194a0f0-8c00-7000-8000-00000000a017";

/** The digest of `value` as the server computes it (of its compact JSON), and the reference that stands for it. */
function stored(value: unknown): { sha256: string; ref: { $baton_payload: { sha256: string; size_bytes: number } } } {
  const bytes = Buffer.from(JSON.stringify(value));
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  return { sha256, ref: { $baton_payload: { sha256, size_bytes: bytes.length } } };
}

const at = "2025-01-01T00:00:00.000Z";
const event = (event_id: number, event_type: string, attributes: Record<string, unknown> = {}): HistoryEvent => ({ event_id, event_time: at, event_type, attributes });

/** A loopback server; `routes` answer by method and path (without the query). */
interface Fake {
  url: string;
  requests: { method: string; path: string; body: string }[];
  close(): Promise<void>;
}

async function fakeServer(route: (req: IncomingMessage, path: string, body: string, res: ServerResponse) => void | Promise<void>): Promise<Fake> {
  const requests: Fake["requests"] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const path = (req.url ?? "").replace(/\?.*$/, "");
      requests.push({ method: req.method ?? "", path, body });
      void Promise.resolve(route(req, path, body, res)).catch((err: unknown) => {
        res.writeHead(500);
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const a = server.address();
  if (typeof a !== "object" || a === null) throw new Error("no address");
  return {
    url: `http://127.0.0.1:${a.port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** Verifies a signed request as the server does (§3), answering 401 when it does not verify. */
async function signedBy(req: IncomingMessage, body: string, res: ServerResponse): Promise<boolean> {
  const headers = { get: (n: string): string | null => (typeof req.headers[n] === "string" ? (req.headers[n] as string) : null) };
  const check = await verify([SECRET], headers, body);
  if (!check.ok) answer(res, 401, { code: "signature_invalid" });
  return check.ok;
}

const PAYLOAD_ROUTE = "/api/v1/namespaces/default/payloads";
const PAGE_ROUTE = "/api/v1/namespaces/default/workflow-tasks/history";

/**
 * The signed payload route over `store`: each answer carries the payloads
 * asked for, in order, at most `perAnswer` of them (the 8 MiB cap, scaled
 * down); a digest it does not hold is `404`.
 */
function payloadRoute(store: Map<string, unknown>, perAnswer = Infinity): (req: IncomingMessage, path: string, body: string, res: ServerResponse) => Promise<void> {
  return async (req, path, body, res) => {
    if (req.method !== "POST" || path !== PAYLOAD_ROUTE) return answer(res, 404, { code: "not_found" });
    if (!(await signedBy(req, body, res))) return;
    const r = JSON.parse(body) as { run_id?: unknown; sha256?: unknown };
    if (r.run_id !== RUN || !Array.isArray(r.sha256) || r.sha256.length === 0 || r.sha256.length > 100) return answer(res, 400, { code: "invalid_argument" });
    const payloads: Payloads = {};
    for (const d of (r.sha256 as string[]).slice(0, perAnswer)) {
      if (!store.has(d)) return answer(res, 404, { code: "not_found" });
      payloads[d] = store.get(d);
    }
    answer(res, 200, { payloads });
  };
}

/** The digests each payload route request asked for. */
const asked = (f: Fake): string[][] => f.requests.filter((r) => r.path === PAYLOAD_ROUTE).map((r) => (JSON.parse(r.body) as { sha256: string[] }).sha256);

const servers: Fake[] = [];
after(() => Promise.all(servers.map((s) => s.close())));
async function serve(route: Parameters<typeof fakeServer>[0]): Promise<Fake> {
  const s = await fakeServer(route);
  servers.push(s);
  return s;
}

const never: () => FetchPayloads = () => {
  throw new Error("nothing should be fetched");
};

describe("references", () => {
  const { sha256, ref } = stored({ rows: ["a"] });

  test("an object whose only member is $baton_payload, with a 64-hex sha256, is a reference", () => {
    assert.equal(referenceDigest(ref), sha256);
    assert.equal(referenceDigest(JSON.parse(JSON.stringify(ref))), sha256);
    assert.equal(referenceDigest({ $baton_payload: { sha256 } }), sha256);
  });

  test("anything else is a payload", () => {
    for (const v of [
      null,
      undefined,
      1,
      "x",
      sha256,
      [ref],
      {},
      { ...ref, other: 1 },
      { $baton_payload: null },
      { $baton_payload: [sha256] },
      { $baton_payload: { sha256: sha256.toUpperCase(), size_bytes: 1 } },
      { $baton_payload: { sha256: sha256.slice(1), size_bytes: 1 } },
      { $baton_payload: { sha256: 7, size_bytes: 1 } },
      { nested: ref },
    ]) {
      assert.equal(referenceDigest(v), undefined, JSON.stringify(v));
    }
  });

  test("only the positions replay reads are put in place; the rest stays as sent", async () => {
    const value = (n: string): { sha256: string; ref: unknown; payload: unknown } => {
      const payload = { n, data: "z".repeat(10) };
      return { ...stored(payload), payload };
    };
    const read = ["started", "completed", "signaled", "admitted", "marker", "child"].map(value);
    const unread = ["scheduled", "initiated", "workflow-result", "continued", "child-input", "failed-details"].map(value);
    const events = [
      event(1, "WorkflowExecutionStarted", { workflow_type: "W", input: read[0]!.ref }),
      event(2, "ActivityTaskScheduled", { activity_id: "1", activity_type: "a", input: unread[0]!.ref }),
      event(3, "ActivityTaskCompleted", { scheduled_event_id: 2, result: read[1]!.ref }),
      event(4, "WorkflowExecutionSignaled", { signal_name: "s", input: read[2]!.ref }),
      event(5, "WorkflowExecutionUpdateAdmitted", { update_id: "u", update_name: "u", input: read[3]!.ref }),
      event(6, "MarkerRecorded", { marker_name: "LocalActivity", details: read[4]!.ref }),
      event(7, "ChildWorkflowExecutionCompleted", { initiated_event_id: 9, result: read[5]!.ref }),
      event(8, "SignalExternalWorkflowExecutionInitiated", { signal_name: "s", input: unread[1]!.ref }),
      event(9, "StartChildWorkflowExecutionInitiated", { workflow_id: "c", workflow_type: "C", input: unread[4]!.ref }),
      event(10, "ActivityTaskCanceled", { scheduled_event_id: 2, details: unread[5]!.ref }),
      event(11, "WorkflowExecutionContinuedAsNew", { input: unread[3]!.ref }),
      event(12, "WorkflowExecutionCompleted", { result: unread[2]!.ref }),
    ];
    const before = structuredClone(events);
    const inlined = Object.fromEntries([...read, ...unread].map((v) => [v.sha256, v.payload]));
    assert.equal(eventPositions(events).length, 6);
    assert.equal(await resolveEvents(events, inlined, never), 6);
    assert.deepEqual(events[0]!.attributes.input, read[0]!.payload);
    assert.deepEqual(events[2]!.attributes.result, read[1]!.payload);
    assert.deepEqual(events[3]!.attributes.input, read[2]!.payload);
    assert.deepEqual(events[4]!.attributes.input, read[3]!.payload);
    assert.deepEqual(events[5]!.attributes.details, read[4]!.payload);
    assert.deepEqual(events[6]!.attributes.result, read[5]!.payload);
    for (const i of [1, 7, 8, 9, 10, 11]) assert.deepEqual(events[i], before[i], `event ${i + 1} is left alone`);
    // The other members of a resolved event are untouched.
    assert.equal(events[2]!.attributes.scheduled_event_id, 2);
  });

  test("a payload that is not a reference is left alone, null included, and nothing is fetched", async () => {
    const events = [event(1, "WorkflowExecutionStarted", { input: null }), event(2, "ActivityTaskCompleted", { result: [{ $baton_payload: 1 }] }), event(3, "MarkerRecorded", {})];
    const before = structuredClone(events);
    assert.equal(await resolveEvents(events, undefined, never), 0);
    assert.deepEqual(events, before);
  });

  test("the payload route is beside the page and checkpoint routes, on checkpointBaseUrl when given", () => {
    assert.equal(payloadsUrlBeside("https://baton.example:8443/api/v1/namespaces/team%2Fa/workflow-tasks/history", undefined), "https://baton.example:8443/api/v1/namespaces/team%2Fa/payloads");
    assert.equal(payloadsUrlBeside("http://public/api/v1/namespaces/default/workflow-tasks/checkpoint", "http://127.0.0.1:7233/"), "http://127.0.0.1:7233/api/v1/namespaces/default/payloads");
  });
});

describe("the signed payload route", () => {
  const values = Array.from({ length: 250 }, (_, i) => ({ i, text: `payload ${i} ✓` }));
  const store = new Map(values.map((v) => [stored(v).sha256, v]));
  const digests = [...store.keys()];

  test("250 references, none inlined: three signed calls of at most 100 digests, in order", async () => {
    const s = await serve(payloadRoute(store));
    let calls = 0;
    const got = await fetchAll(digests, signedFetcher(`${s.url}${PAYLOAD_ROUTE}`, [SECRET], RUN, () => calls++));
    assert.deepEqual([...got.values()], values);
    assert.deepEqual(asked(s), [digests.slice(0, 100), digests.slice(100, 200), digests.slice(200)]);
    assert.equal(calls, 3);
    assert.ok(asked(s).every((a) => a.length <= MAX_DIGESTS_PER_CALL));
  });

  test("an answer that leaves some out: the rest are asked for again until all are in", async () => {
    const s = await serve(payloadRoute(store, 40));
    const some = digests.slice(0, 130);
    const got = await fetchAll(some, signedFetcher(`${s.url}${PAYLOAD_ROUTE}`, [SECRET], RUN, () => {}));
    assert.deepEqual([...got.keys()].sort(), [...some].sort());
    assert.deepEqual(asked(s), [some.slice(0, 100), some.slice(40, 130), some.slice(80, 130), some.slice(120, 130)]);
  });

  test("events whose references are partly inlined: one call for the missing ones only, duplicates once", async () => {
    const s = await serve(payloadRoute(store));
    const [a, b, c] = values.map((v) => stored(v));
    const events = [
      event(1, "WorkflowExecutionStarted", { input: a!.ref }),
      event(2, "ActivityTaskCompleted", { result: b!.ref }),
      event(3, "ActivityTaskCompleted", { result: c!.ref }),
      event(4, "WorkflowExecutionSignaled", { input: b!.ref }),
    ];
    let calls = 0;
    const n = await resolveEvents(events, { [a!.sha256]: values[0] }, () => signedFetcher(`${s.url}${PAYLOAD_ROUTE}`, [SECRET], RUN, () => calls++));
    assert.equal(n, 4);
    assert.deepEqual(
      events.map((e) => e.attributes.input ?? e.attributes.result),
      [values[0], values[1], values[2], values[1]],
    );
    assert.deepEqual(asked(s), [[b!.sha256, c!.sha256]]);
    assert.equal(calls, 1);
  });

  test("an answer with none of what was asked, an unknown digest, a rejected signature: errors, not a loop", async () => {
    const empty = await serve(async (req, _path, body, res) => {
      if (await signedBy(req, body, res)) answer(res, 200, { payloads: {} });
    });
    await assert.rejects(fetchAll(digests.slice(0, 3), signedFetcher(`${empty.url}${PAYLOAD_ROUTE}`, [SECRET], RUN, () => {})), /answered none of the 3 payloads/);
    assert.equal(empty.requests.length, 1);
    const s = await serve(payloadRoute(store));
    await assert.rejects(fetchAll(["0".repeat(64)], signedFetcher(`${s.url}${PAYLOAD_ROUTE}`, [SECRET], RUN, () => {})), /payloads: HTTP 404/);
    const other = "whsec_//////////////////////////////////////////8=";
    await assert.rejects(fetchAll(digests.slice(0, 1), signedFetcher(`${s.url}${PAYLOAD_ROUTE}`, [other], RUN, () => {})), /payloads: HTTP 401/);
  });
});

// ---- the handler: its pushes, with references in them ----

const echo = defineSignal<[unknown]>("echo");
const activities = {
  async measure(input: unknown, resumeFrom: unknown = null): Promise<unknown> {
    return { got: input, resumeFrom };
  },
};
const acts = proxyActivities<typeof activities>({ startToCloseTimeout: "10s" });
const locals = proxyLocalActivities<typeof activities>({ startToCloseTimeout: "10s" });

/** The start's input, an activity's result, a local activity's result and a signal: what the answer returns. */
async function Claims(input: unknown): Promise<unknown> {
  let signal: unknown;
  setHandler(echo, (s) => void (signal = s));
  const result = await acts.measure(input);
  const local = await locals.measure("local");
  await condition(() => signal !== undefined);
  return { input, result, local, signal };
}

describe("the handler puts references in place before replay", () => {
  const input = { text: "the start's input" };
  const result = { got: "the activity's result" };
  const localResult = { got: "the local activity's result" };
  const signal = { text: "the signal's input" };
  // The payloads as the server stores them: the start's and the signal's input are argument lists, the marker's details an object.
  const started = [input];
  const marker = { activity_id: "2", activity_type: "measure", attempt: 1, result: localResult };
  const signaled = [signal];
  const unread = { text: "ActivityTaskScheduled input: never fetched" };
  const [I, R, L, S, U] = [started, result, marker, signaled, unread].map(stored) as [ReturnType<typeof stored>, ReturnType<typeof stored>, ReturnType<typeof stored>, ReturnType<typeof stored>, ReturnType<typeof stored>];
  const byDigest = new Map<string, unknown>([
    [I.sha256, started],
    [R.sha256, result],
    [L.sha256, marker],
    [S.sha256, signaled],
  ]);

  /** A Claims run's history up to its third task, references where the payloads were. */
  function history(): HistoryEvent[] {
    return [
      event(1, "WorkflowExecutionStarted", { workflow_type: "Claims", task_queue: "q", input: I.ref }),
      event(2, "WorkflowTaskScheduled"),
      event(3, "WorkflowTaskStarted", { scheduled_event_id: 2 }),
      event(4, "WorkflowTaskCompleted", { scheduled_event_id: 2, started_event_id: 3 }),
      event(5, "ActivityTaskScheduled", { activity_id: "1", activity_type: "measure", task_queue: "q", input: U.ref, workflow_task_completed_event_id: 4 }),
      event(6, "ActivityTaskStarted", { scheduled_event_id: 5, attempt: 1 }),
      event(7, "ActivityTaskCompleted", { scheduled_event_id: 5, started_event_id: 6, result: R.ref }),
      event(8, "WorkflowTaskScheduled"),
      event(9, "WorkflowTaskStarted", { scheduled_event_id: 8 }),
      event(10, "WorkflowTaskCompleted", { scheduled_event_id: 8, started_event_id: 9 }),
      event(11, "MarkerRecorded", { marker_name: "LocalActivity", details: L.ref, workflow_task_completed_event_id: 10 }),
      event(12, "WorkflowExecutionSignaled", { signal_name: "echo", input: S.ref }),
      event(13, "WorkflowTaskScheduled"),
      event(14, "WorkflowTaskStarted", { scheduled_event_id: 13 }),
    ];
  }

  function push(server: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      type: "workflow_task",
      namespace: "default",
      task_token: "tok",
      workflow_id: "claims",
      run_id: RUN,
      workflow_type: "Claims",
      task_queue: "q",
      attempt: 1,
      history: history(),
      history_length: 14,
      history_size_bytes: 2000,
      suggest_continue_as_new: false,
      history_url: `${server}${PAGE_ROUTE}`,
      ...extra,
    };
  }

  async function send(handler: ReturnType<typeof createHandler>, body: unknown): Promise<{ status: number; json: unknown }> {
    const text = JSON.stringify(body);
    const ts = Math.floor(Date.now() / 1000);
    const headers = { "content-type": "application/json", "webhook-id": "msg_1", "webhook-timestamp": String(ts), "webhook-signature": await sign([SECRET], "msg_1", ts, text) };
    const r = await handler(new Request("http://h.test/", { method: "POST", headers, body: text }));
    return { status: r.status, json: await r.json().catch(() => null) };
  }

  const completed = { commands: [{ command_type: "CompleteWorkflowExecution", attributes: { result: { input, result, local: localResult, signal } } }] };

  test("the description lists payload_references", async () => {
    const handler = createHandler({ workflows: { Claims }, signingSecret: SECRET });
    const d = (await (await handler(new Request("http://h.test/"))).json()) as { features: string[] };
    assert.deepEqual(d.features, ["history_pages", "payload_references"]);
  });

  test("a whole push: the inlined payload from `payloads`, the others in one signed call, ActivityTaskScheduled's never", async () => {
    const s = await serve(payloadRoute(byDigest));
    const handler = createHandler({ workflows: { Claims }, activities, signingSecret: SECRET, inlineActivities: false });
    const r = await send(handler, push(s.url, { payloads: { [I.sha256]: started } }));
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, completed);
    assert.deepEqual(asked(s), [[R.sha256, L.sha256, S.sha256]]);
    assert.ok(!asked(s).flat().includes(U.sha256));
    assert.equal(handler.stats().payloadFetches, 1);
  });

  test("every payload inlined: no call at all", async () => {
    const handler = createHandler({ workflows: { Claims }, signingSecret: SECRET });
    const r = await send(handler, push("http://127.0.0.1:9", { payloads: Object.fromEntries(byDigest) }));
    assert.deepEqual(r.json, completed);
    assert.equal(handler.stats().payloadFetches, 0);
  });

  test("a paged push: the pages' payloads join the push's, the rest in one call after the last page", async () => {
    const whole = history();
    const route = payloadRoute(byDigest);
    const s = await serve(async (req, path, body, res) => {
      if (path !== PAGE_ROUTE) return route(req, path, body, res);
      if (!(await signedBy(req, body, res))) return;
      const first = (JSON.parse(body) as { first_event_id: number }).first_event_id;
      // Two pages: events 1–6, then 7–11; each inlines the start's input / the activity result.
      const events = first === 1 ? whole.slice(0, 6) : whole.slice(6, 11);
      const payloads = first === 1 ? { [I.sha256]: started } : { [R.sha256]: result };
      answer(res, 200, { events, next_first_event_id: first === 1 ? 7 : 12, payloads });
    });
    const handler = createHandler({ workflows: { Claims }, signingSecret: SECRET });
    const r = await send(handler, push(s.url, { history: whole.slice(11), history_first_event_id: 12, history_reference: "ref" }));
    assert.deepEqual(r.json, completed);
    assert.equal(handler.stats().historyPages, 2);
    assert.deepEqual(asked(s), [[L.sha256, S.sha256]]);
    // The payload call came after both pages.
    assert.deepEqual(
      s.requests.map((q) => q.path),
      [PAGE_ROUTE, PAGE_ROUTE, PAYLOAD_ROUTE],
    );
  });

  test("a sticky push: its new events are put in place before the kept instance applies them", async () => {
    const s = await serve(payloadRoute(byDigest));
    const handler = createHandler({ workflows: { Claims }, activities, signingSecret: SECRET, inlineActivities: false });
    const pushHandler = handler[PUSH_HANDLER]!;
    const sendLongLived = async (body: unknown): Promise<{ commands?: { command_type: string; attributes: Record<string, unknown> }[]; sticky?: boolean }> => {
      const text = JSON.stringify(body);
      const ts = Math.floor(Date.now() / 1000);
      const headers = new Headers({ "webhook-id": "msg_2", "webhook-timestamp": String(ts), "webhook-signature": await sign([SECRET], "msg_2", ts, text) });
      const a = await pushHandler("POST", headers, new TextEncoder().encode(text), { longLived: true });
      return JSON.parse(a.body ?? "null") as { commands?: { command_type: string; attributes: Record<string, unknown> }[]; sticky?: boolean };
    };
    const whole = history();
    const first = await sendLongLived(push(s.url, { history: whole.slice(0, 3), history_length: 3, payloads: { [I.sha256]: started } }));
    assert.equal(first.sticky, true);
    assert.deepEqual(first.commands?.map((c) => c.command_type), ["ScheduleActivityTask"]);
    assert.deepEqual(first.commands?.[0]?.attributes.input, [input]);
    // The second task, sticky: events 4–9, the activity's result by reference, not inlined.
    const second = await sendLongLived(push(s.url, { task_token: "tok2", history: whole.slice(3, 9), history_length: 9, history_first_event_id: 4, history_reference: "ref" }));
    assert.equal(handler.stats().stickyHits, 1);
    assert.equal(handler.stats().historyPages, 0);
    assert.deepEqual(asked(s), [[R.sha256]]);
    // The local activity ran with the result in hand and its marker was recorded.
    const recorded = second.commands?.find((c) => c.command_type === "RecordMarker");
    assert.deepEqual((recorded?.attributes.details as { result?: unknown } | undefined)?.result, { got: "local", resumeFrom: null });
  });

  test("the payload route fails: the workflow task fails (the server retries it), and no code saw a reference", async () => {
    const s = await serve((_req, _path, _body, res) => answer(res, 404, { code: "not_found" }));
    const handler = createHandler({ workflows: { Claims }, signingSecret: SECRET });
    const r = await send(handler, push(s.url));
    assert.equal(r.status, 200);
    const failure = (r.json as { failure: { cause: string; failure: { message: string } } }).failure;
    assert.equal(failure.cause, "WORKFLOW_WORKER_UNHANDLED_FAILURE");
    assert.match(failure.failure.message, /payloads: HTTP 404/);
  });

  test("an activity push: input and heartbeat_details put in place, one inlined and one fetched from serverUrl's payload route", async () => {
    const arg = { big: "activity input" };
    const details = [{ resume: 3 }];
    const A = stored([arg]);
    const H = stored(details);
    const s = await serve(payloadRoute(new Map([[H.sha256, details]])));
    const handler = createHandler({ activities, signingSecret: SECRET, serverUrl: `${s.url}/` });
    const activityPush = {
      type: "activity_task",
      namespace: "default",
      task_token: "tok",
      workflow_id: "claims",
      run_id: RUN,
      workflow_type: "Claims",
      activity_id: "1",
      activity_type: "measure",
      task_queue: "q",
      input: A.ref,
      heartbeat_details: H.ref,
      payloads: { [A.sha256]: [arg] },
      attempt: 2,
      idempotency_key: `${RUN}/1`,
      scheduled_time: at,
      started_time: at,
      deadline: "2099-01-01T00:00:00.000Z",
    };
    const r = await send(handler, activityPush);
    assert.deepEqual(r.json, { result: { got: arg, resumeFrom: null } });
    assert.deepEqual(asked(s), [[H.sha256]]);
    // The activity's own view of the details, through its Info.
    const seen: unknown[] = [];
    const { Context } = await import("../src/activity.js");
    const probe = createHandler({ activities: { measure: async () => void seen.push(Context.current().info.heartbeatDetails) }, signingSecret: SECRET, serverUrl: s.url });
    await send(probe, activityPush);
    assert.deepEqual(seen, [details[0]]);
  });

  test("an activity push whose payloads cannot be fetched is not run: 503, pushed again later", async () => {
    let ran = false;
    const handler = createHandler({ activities: { measure: async () => void (ran = true) }, signingSecret: SECRET });
    const r = await send(handler, {
      type: "activity_task",
      namespace: "default",
      task_token: "tok",
      workflow_id: "claims",
      run_id: RUN,
      workflow_type: "Claims",
      activity_id: "1",
      activity_type: "measure",
      task_queue: "q",
      input: stored(["x"]).ref,
      attempt: 1,
      idempotency_key: `${RUN}/1`,
      scheduled_time: at,
      started_time: at,
      deadline: "2099-01-01T00:00:00.000Z",
    });
    assert.equal(r.status, 503);
    assert.match(String((r.json as { error: string }).error), /no serverUrl/);
    assert.equal(ran, false);
  });

  test("the client's fetchHistory puts references in place through the REST payload route; the Replayer replays it", async () => {
    const events = [...history(), event(15, "WorkflowTaskCompleted", { scheduled_event_id: 13, started_event_id: 14 }), event(16, "WorkflowExecutionCompleted", { result: stored({}).ref, workflow_task_completed_event_id: 15 })];
    const base = `/api/v1/namespaces/default/workflows/claims`;
    const s = await serve((req, path, _body, res) => {
      if (req.method === "GET" && path === `${base}/history`) {
        // Two pages, as the REST route pages.
        const second = (req.url ?? "").includes("next_page_token=p2");
        return answer(res, 200, { run_id: RUN, events: second ? events.slice(8) : events.slice(0, 8), ...(second ? {} : { next_page_token: "p2" }) });
      }
      const m = /^\/api\/v1\/namespaces\/default\/workflows\/claims\/runs\/([^/]+)\/payloads\/([0-9a-f]{64})$/.exec(path);
      if (req.method === "GET" && m?.[1] === RUN && byDigest.has(m[2]!)) return answer(res, 200, { sha256: m[2], size_bytes: 1, value: byDigest.get(m[2]!) });
      answer(res, 404, { code: "not_found" });
    });
    const replayer = new Replayer({ Claims });
    await assert.rejects(replayer.replay({ events: history(), workflow_id: "claims" }), /payloads by reference/);
    const client = new Client({ connection: await Connection.connect({ address: s.url }) });
    const fetched = await client.workflow.getHandle("claims").fetchHistory();
    assert.equal(fetched.run_id, RUN);
    assert.deepEqual(fetched.events[0]!.attributes.input, [input]);
    assert.deepEqual(fetched.events[11]!.attributes.input, [signal]);
    // Not read by replay: left as the server stored them.
    assert.deepEqual(fetched.events[4]!.attributes.input, U.ref);
    assert.deepEqual(fetched.events[15]!.attributes.result, stored({}).ref);
    const gets = s.requests.filter((q) => q.path.includes("/payloads/")).map((q) => q.path.slice(-64));
    assert.deepEqual(gets.sort(), [...byDigest.keys()].sort());
    await replayer.replay(fetched);
  });
});

// ---- an inline session: a checkpoint's answer carries references too ----

const sessionActivities = {
  async stepLocal(): Promise<string> {
    return "local result";
  },
  async stepInline(): Promise<string> {
    return "inline result";
  },
};
const sessionLocal = proxyLocalActivities<typeof sessionActivities>({ startToCloseTimeout: "10s" });
const sessionInline = proxyActivities<typeof sessionActivities>({ startToCloseTimeout: "10s" });

async function LocalThenInline(): Promise<string[]> {
  return [await sessionLocal.stepLocal(), await sessionInline.stepInline()];
}

test("a checkpoint answer's LocalActivity marker by reference is put in place before it is matched: the session goes on", async () => {
  const store = new Map<string, unknown>();
  const checkpoints: { commands?: { command_type: string; attributes: Record<string, unknown> }[]; completions?: unknown[] }[] = [];
  const route = payloadRoute(store);
  const s = await serve(async (req, path, body, res) => {
    if (path !== "/api/v1/namespaces/default/workflow-tasks/checkpoint") return route(req, path, body, res);
    if (!(await signedBy(req, body, res))) return;
    const c = JSON.parse(body) as (typeof checkpoints)[number];
    checkpoints.push(c);
    const time = new Date().toISOString();
    if (checkpoints.length === 1) {
      // As the server records it: the marker's details stored apart, a reference in the event, not inlined.
      const marker = c.commands!.find((x) => x.command_type === "RecordMarker")!;
      const details = stored(marker.attributes.details);
      store.set(details.sha256, marker.attributes.details);
      const schedule = c.commands!.find((x) => x.command_type === "ScheduleActivityTask")!;
      return answer(res, 200, {
        continued: true,
        continuation_token: "c1",
        completions: [],
        activity_tasks: [{ activity_id: schedule.attributes.activity_id, task_token: "a2", attempt: 1 }],
        events: [
          event(4, "WorkflowTaskCompleted", { scheduled_event_id: 2, started_event_id: 3 }),
          event(5, "MarkerRecorded", { ...marker.attributes, details: details.ref, workflow_task_completed_event_id: 4 }),
          event(6, "ActivityTaskScheduled", { ...schedule.attributes, task_queue: "q", workflow_task_completed_event_id: 4, inline: true }),
        ],
        server_time: time,
      });
    }
    answer(res, 200, { continued: true, continuation_token: "c2", completions: [{ accepted: true }], activity_tasks: [], events: [], server_time: time });
  });
  const handler = createHandler({ workflows: { LocalThenInline }, activities: sessionActivities, signingSecret: SECRET });
  const body = JSON.stringify({
    type: "workflow_task",
    namespace: "default",
    task_token: "tok",
    workflow_id: "session",
    run_id: RUN,
    workflow_type: "LocalThenInline",
    task_queue: "q",
    attempt: 1,
    history: [event(1, "WorkflowExecutionStarted", { workflow_type: "LocalThenInline", task_queue: "q", input: [] }), event(2, "WorkflowTaskScheduled"), event(3, "WorkflowTaskStarted", { scheduled_event_id: 2 })],
    history_length: 3,
    history_size_bytes: 300,
    suggest_continue_as_new: false,
    deadline: new Date(Date.now() + 10_000).toISOString(),
    checkpoint_url: `${s.url}/api/v1/namespaces/default/workflow-tasks/checkpoint`,
    history_url: `${s.url}${PAGE_ROUTE}`,
  });
  const ts = Math.floor(Date.now() / 1000);
  const headers = { "content-type": "application/json", "webhook-id": "msg_3", "webhook-timestamp": String(ts), "webhook-signature": await sign([SECRET], "msg_3", ts, body) };
  const r = await handler(new Request("http://h.test/", { method: "POST", headers, body }));
  assert.deepEqual(await r.json(), { checkpointed: true });
  assert.equal(asked(s).length, 1);
  assert.equal(handler.stats().payloadFetches, 1);
  // The second checkpoint goes on in the instance: the inline result and the workflow's completion.
  assert.equal(checkpoints.length, 2);
  assert.deepEqual(checkpoints[1]!.completions, [{ task_token: "a2", result: "inline result" }]);
  assert.deepEqual(checkpoints[1]!.commands, [{ command_type: "CompleteWorkflowExecution", attributes: { result: ["local result", "inline result"] } }]);
});
