/**
 * Payloads by reference end to end against `baton dev` (protocol.md §9.1):
 * a run whose input, local activity result, inline activity result, pushed
 * activity input and result and signal are each about 300 KB, (a) with the
 * server's defaults (payloads past 128 KiB stored by reference, pushes
 * inlining up to 2 MiB of them) and (b) with `--payload-reference-bytes
 * 1024 --push-payload-bytes 0` (nothing inlined: the handlers fetch every
 * reference from the payload route). Each run goes through a long-lived
 * (sticky) workflow handler and one that keeps nothing and replays every
 * task. The run's result is right; its history over REST holds references
 * (the server did not store inline); the client's fetched history has the
 * payloads in place and replays.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { HistoryEvent } from "../src/common.js";
import { referenceDigest } from "../src/core/payloads.js";
import { type BatonHandler, createHandler } from "../src/index.js";
import { Replayer, type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { condition, defineQuery, defineSignal, proxyActivities, proxyLocalActivities, setHandler } from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const ACTIVITY_QUEUE = "ts-claims-acts";
const SIZE = 300_000;

/** A payload of about 300 KB that says what it is. */
interface Big {
  kind: string;
  data: string;
}
const big = (kind: string): Big => ({ kind, data: `${kind}:`.repeat(Math.ceil(SIZE / (kind.length + 1))).slice(0, SIZE) });
/** `kind:<length>` when `v` is exactly `big(kind)`, else what is wrong with it (a reference, most likely). */
function checked(v: unknown, kind: string): string {
  const b = v as Partial<Big> | null;
  if (b === null || typeof b !== "object" || b.kind !== kind || b.data !== big(kind).data) return `not ${kind}: ${JSON.stringify(v)?.slice(0, 200)}`;
  return `${kind}:${b.data.length}`;
}

/** Served by a handler of their own (ACTIVITY_QUEUE): its pushes carry the input. */
const pushedActivities = {
  async claims_step(input: Big): Promise<Big> {
    if (checked(input, "activity-input") !== `activity-input:${SIZE}`) throw new Error(checked(input, "activity-input"));
    return big("activity-result");
  },
};
/** Served by the workflow handler: run as a local activity and inline. */
const ownActivities = {
  async claims_local(): Promise<Big> {
    return big("local-result");
  },
  async claims_inline(): Promise<Big> {
    return big("inline-result");
  },
};

const pushed = proxyActivities<typeof pushedActivities>({ taskQueue: ACTIVITY_QUEUE, startToCloseTimeout: "30s" });
const local = proxyLocalActivities<typeof ownActivities>({ startToCloseTimeout: "30s" });
const inline = proxyActivities<typeof ownActivities>({ startToCloseTimeout: "30s" });

const bigSignal = defineSignal<[Big]>("big_signal");
const seen = defineQuery<string[]>("seen");

async function ClaimChecks(input: Big): Promise<string[]> {
  let signal: Big | undefined;
  const values: string[] = [checked(input, "workflow-input")];
  setHandler(bigSignal, (s) => void (signal = s));
  setHandler(seen, () => values);
  // The local activity's marker is committed by the inline session's first checkpoint, whose answer carries it back.
  values.push(checked(await local.claims_local(), "local-result"));
  values.push(checked(await inline.claims_inline(), "inline-result"));
  values.push(checked(await pushed.claims_step(big("activity-input")), "activity-result"));
  await condition(() => signal !== undefined);
  values.push(checked(signal, "signal"));
  return values;
}

const EXPECTED = ["workflow-input", "local-result", "inline-result", "activity-result", "signal"].map((k) => `${k}:${SIZE}`);
const workflows = { ClaimChecks };
const replayer = new Replayer(workflows);

/** The run's history as the REST API stores it, every page. */
async function rawHistory(address: string, workflowId: string): Promise<HistoryEvent[]> {
  const events: HistoryEvent[] = [];
  let token: string | undefined;
  do {
    const q = token !== undefined ? `?next_page_token=${encodeURIComponent(token)}` : "";
    const r = await fetch(`${address}/api/v1/namespaces/default/workflows/${encodeURIComponent(workflowId)}/history${q}`);
    assert.equal(r.status, 200);
    const page = (await r.json()) as { events: HistoryEvent[]; next_page_token?: string | null };
    events.push(...page.events);
    token = page.next_page_token ?? undefined;
  } while (token !== undefined);
  return events;
}

/** Where each kind of payload is in a ClaimChecks history: the event and the attribute holding it. */
const POSITIONS: [what: string, find: (e: HistoryEvent) => boolean, member: string][] = [
  ["the workflow input", (e) => e.event_type === "WorkflowExecutionStarted", "input"],
  ["the local activity's marker", (e) => e.event_type === "MarkerRecorded", "details"],
  ["the pushed activity's input", (e) => e.event_type === "ActivityTaskScheduled" && e.attributes.activity_type === "claims_step", "input"],
  ["the signal", (e) => e.event_type === "WorkflowExecutionSignaled", "input"],
];

for (const [mode, args] of [
  ["the server's defaults", []],
  ["--payload-reference-bytes 1024 --push-payload-bytes 0: every reference fetched", ["--payload-reference-bytes", "1024", "--push-payload-bytes", "0"]],
] as const) {
  const nothingInlined = args.length > 0;
  describe(`payloads by reference against baton dev, ${mode}`, { skip: SKIP_WITHOUT_BINARY }, () => {
    let env: TestWorkflowEnvironment;
    let activityHandler: BatonHandler;
    const served: ServedHandler[] = [];

    before(async () => {
      env = await TestWorkflowEnvironment.createLocal({ args: [...args] });
      activityHandler = createHandler({ activities: pushedActivities, signingSecret: SECRET, serverUrl: env.address });
      const s = await serveHandler(activityHandler);
      served.push(s);
      await env.registerEndpoint(ACTIVITY_QUEUE, s.url, SECRET);
    });

    after(async () => {
      for (const s of served) await s.close();
      await env?.teardown();
    });

    for (const [how, maxCachedWorkflows] of [
      ["a sticky handler", 1000],
      ["a handler that replays every task", 0],
    ] as const) {
      test(`${how}: every payload reaches the code; the history holds references and replays`, async () => {
        const queue = `ts-claims-${maxCachedWorkflows}`;
        const handler = createHandler({ workflows, activities: ownActivities, signingSecret: SECRET, serverUrl: env.address, maxCachedWorkflows });
        const s = await serveHandler(handler);
        served.push(s);
        const registered = await env.registerEndpoint(queue, s.url, SECRET);
        assert.deepEqual(registered.features, ["history_pages", "payload_references"]);
        const workflowId = `${queue}-${nothingInlined ? "fetched" : "inlined"}`;
        const handle = await env.client.workflow.start(ClaimChecks, { workflowId, taskQueue: queue, args: [big("workflow-input")] });
        await handle.signal(bigSignal, big("signal"));
        assert.deepEqual(await handle.result(), EXPECTED);
        // A query replays the closed run's whole history, references and all.
        assert.deepEqual(await handle.query(seen), EXPECTED);

        const raw = await rawHistory(env.address, workflowId);
        const at = (what: string, find: (e: HistoryEvent) => boolean, member: string): unknown => {
          const e = raw.find(find);
          assert.ok(e !== undefined, `${what}: no such event in ${raw.map((x) => x.event_type).join(", ")}`);
          return e.attributes[member];
        };
        for (const [what, find, member] of POSITIONS) assert.ok(referenceDigest(at(what, find, member)) !== undefined, `${what} is stored by reference: ${JSON.stringify(at(what, find, member))?.slice(0, 200)}`);
        const results = raw.filter((e) => e.event_type === "ActivityTaskCompleted").map((e) => e.attributes.result);
        assert.equal(results.length, 2);
        for (const r of results) assert.ok(referenceDigest(r) !== undefined, `an activity result is stored by reference: ${JSON.stringify(r)?.slice(0, 200)}`);
        assert.equal(raw.filter((e) => e.event_type === "WorkflowTaskFailed").length, 0);

        const fetched = await handle.fetchHistory();
        assert.equal(fetched.events.length, raw.length);
        assert.deepEqual(fetched.events.find((e) => e.event_type === "WorkflowExecutionStarted")?.attributes.input, [big("workflow-input")]);
        assert.deepEqual(fetched.events.find((e) => e.event_type === "WorkflowExecutionSignaled")?.attributes.input, [big("signal")]);
        await replayer.replay(fetched);

        const stats = handler.stats();
        if (nothingInlined) {
          assert.ok(stats.payloadFetches > 0, `the workflow handler fetched: ${JSON.stringify(stats)}`);
          assert.ok(activityHandler.stats().payloadFetches > 0, `the activity handler fetched: ${JSON.stringify(activityHandler.stats())}`);
        } else {
          assert.equal(stats.payloadFetches, 0, `every payload came inlined: ${JSON.stringify(stats)}`);
          assert.equal(activityHandler.stats().payloadFetches, 0, `every payload came inlined: ${JSON.stringify(activityHandler.stats())}`);
        }
        if (maxCachedWorkflows > 0) assert.ok(stats.stickyHits > 0, `sticky pushes were taken: ${JSON.stringify(stats)}`);
      });
    }
  });
}
