/**
 * Runs the end-to-end scenarios of tests/conformance/<name>/scenario.json
 * (see tests/conformance/README.md) against a real `baton dev
 * --time-skipping`, with the TypeScript side of each (scenario_features.ts)
 * served on loopback. sdk-py/tests/test_conformance_e2e.py runs the same
 * files with the Python SDK.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { type WorkflowHandle, WorkflowFailedError, WorkflowUpdateFailedError } from "../src/client.js";
import type { ApplicationFailure, HistoryEvent } from "../src/common.js";
import { createHandler } from "../src/index.js";
import { type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { SKIP_WITHOUT_BINARY, until } from "./e2e_helpers.js";
import { REPO_ROOT } from "./paths.js";
import { SCENARIO_FEATURES } from "./scenario_features.js";

const CASES = path.join(REPO_ROOT, "tests", "conformance");
const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const QUEUE = "conformance";

type Step =
  | { wait_for: "timer" }
  | { skip_time: string }
  | { signal: string; args: unknown[] }
  | { query: string; args: unknown[]; result: unknown }
  | { update: string; args: unknown[]; result?: unknown; rejected?: string };

interface Expect {
  status: string;
  /** The (last) run's WorkflowExecutionStarted names a run it continued. */
  continued?: boolean;
  result?: unknown;
  event_counts?: Record<string, number>;
  events_in_order?: string[];
  last_event?: string;
  scheduled_together?: string[][];
  activity_attempts?: Record<string, number>;
  activity_outcomes?: Record<string, string>;
  /** The `inline` attribute of each ActivityTaskScheduled of the type, in order (protocol.md §5.9). */
  activity_inline?: Record<string, boolean[]>;
  queries?: { query: string; args: unknown[]; result: unknown }[];
}

interface Run {
  workflow_type: string;
  workflow_id: string;
  args: unknown[];
  steps: Step[];
  expect: Expect;
}

const dirs = existsSync(CASES) ? readdirSync(CASES).filter((d) => existsSync(path.join(CASES, d, "scenario.json"))).sort() : [];



/** The facts of `expect` that the history must show. */
function checkHistory(events: HistoryEvent[], expect: Expect): void {
  const types = events.map((e) => e.event_type);
  const all = types.join(", ");
  for (const [type, n] of Object.entries(expect.event_counts ?? {})) assert.equal(types.filter((t) => t === type).length, n, `${type} in ${all}`);
  if (expect.events_in_order) {
    let at = 0;
    for (const t of types) if (t === expect.events_in_order[at]) at++;
    assert.equal(at, expect.events_in_order.length, `${JSON.stringify(expect.events_in_order)} is not a subsequence of ${all}`);
  }
  if (expect.last_event) assert.equal(types.at(-1), expect.last_event);
  if (expect.continued !== undefined) assert.equal(typeof events[0]?.attributes.continued_execution_run_id === "string", expect.continued, "continued");
  const scheduled = events.filter((e) => e.event_type === "ActivityTaskScheduled");
  const byType = (activityType: string): HistoryEvent[] => scheduled.filter((e) => e.attributes.activity_type === activityType);
  for (const group of expect.scheduled_together ?? []) {
    const tasks = new Set(group.flatMap((t) => byType(t).map((e) => e.attributes.workflow_task_completed_event_id)));
    assert.equal(tasks.size, 1, `${group.join(", ")} were not scheduled by one workflow task`);
  }
  const closing = (e: HistoryEvent): boolean => e.event_type.startsWith("ActivityTask") && !["ActivityTaskScheduled", "ActivityTaskStarted", "ActivityTaskCancelRequested"].includes(e.event_type);
  for (const [activityType, attempts] of Object.entries(expect.activity_attempts ?? {})) {
    const ids = new Set(byType(activityType).map((e) => e.event_id));
    const started = events.filter((e) => e.event_type === "ActivityTaskStarted" && ids.has(Number(e.attributes.scheduled_event_id)));
    assert.deepEqual(started.map((e) => e.attributes.attempt), [attempts], `attempts of ${activityType}`);
  }
  for (const [activityType, outcome] of Object.entries(expect.activity_outcomes ?? {})) {
    const ids = new Set(byType(activityType).map((e) => e.event_id));
    assert.deepEqual(events.filter((e) => closing(e) && ids.has(Number(e.attributes.scheduled_event_id))).map((e) => e.event_type), [outcome], activityType);
  }
  for (const [activityType, inline] of Object.entries(expect.activity_inline ?? {})) {
    assert.deepEqual(byType(activityType).map((e) => e.attributes.inline === true), inline, `inline of ${activityType}`);
  }
}

test("every end-to-end scenario has a TypeScript feature", () => {
  assert.ok(dirs.length > 0, `no scenarios under ${CASES}`);
  for (const d of dirs) assert.ok(SCENARIO_FEATURES[d], `no TypeScript feature for tests/conformance/${d}`);
});

describe("tests/conformance scenarios against baton dev", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  let served: ServedHandler;

  before(async () => {
    // Small enough that sticky_history's run outgrows it (protocol.md §5.10).
    env = await TestWorkflowEnvironment.createTimeSkipping({ args: ["--push-history-bytes", "16384"] });
    const features = Object.values(SCENARIO_FEATURES);
    const handler = createHandler({
      workflows: Object.assign({}, ...features.map((f) => f.workflows)),
      activities: Object.assign({}, ...features.map((f) => f.activities)),
      signingSecret: SECRET,
      serverUrl: env.address,
    });
    served = await serveHandler(handler);
    await env.registerEndpoint(QUEUE, served.url, SECRET);
  });

  after(async () => {
    await served?.close();
    await env?.teardown();
  });

  for (const dir of dirs) {
    test(`scenario: ${dir}`, async () => {
      const { runs } = JSON.parse(readFileSync(path.join(CASES, dir, "scenario.json"), "utf8")) as { runs: Run[] };
      for (const run of runs) {
        const handle: WorkflowHandle = await env.client.workflow.start(run.workflow_type, { workflowId: run.workflow_id, taskQueue: QUEUE, args: run.args });
        for (const step of run.steps) {
          if ("wait_for" in step) {
            await until("a pending timer", async () => ((await handle.describe()).pending.pending_timers.length > 0 ? true : undefined));
          } else if ("skip_time" in step) await env.skipTime(step.skip_time);
          else if ("signal" in step) await handle.signal(step.signal, ...step.args);
          else if ("update" in step) {
            const outcome = await handle.executeUpdate(step.update, { args: step.args }).then(
              (result) => ({ result }),
              (err: unknown) => {
                if (err instanceof WorkflowUpdateFailedError) return { rejected: (err.cause as ApplicationFailure | undefined)?.type };
                throw err;
              },
            );
            if ("rejected" in step) assert.deepEqual(outcome, { rejected: step.rejected }, `${run.workflow_id}: update ${step.update}`);
            else assert.deepEqual(outcome, { result: step.result }, `${run.workflow_id}: update ${step.update}`);
          } else assert.deepEqual(await handle.query(step.query, ...step.args), step.result, `${run.workflow_id}: query ${step.query}`);
        }
        const outcome = await handle.result().then(
          (result) => ({ status: "COMPLETED", result }),
          (err: unknown) => {
            if (err instanceof WorkflowFailedError) return { status: err.status, result: undefined };
            throw err;
          },
        );
        assert.equal(outcome.status, run.expect.status, run.workflow_id);
        if ("result" in run.expect) assert.deepEqual(outcome.result, run.expect.result, run.workflow_id);
        // The last run of the chain (the handle names the first).
        checkHistory((await env.client.workflow.getHandle(run.workflow_id).fetchHistory()).events, run.expect);
        for (const q of run.expect.queries ?? []) assert.deepEqual(await handle.query(q.query, ...q.args), q.result, `${run.workflow_id}: query ${q.query} after the run`);
      }
    });
  }
});
