// The replay contract's vectors (../tests/replay, docs/protocol.md §14):
// each vector's neutral workflow script, interpreted with the public
// workflow API, replayed over the vector's history by the SDK's real
// workflow-task handler, must answer exactly the vector's commands or
// non-determinism error. The Rust engine tests generate and check the same
// files, and sdk-py runs them too, so the three cannot drift apart. Each
// vector is also answered task by task by one instance fed only each
// task's new events, as sticky pushes feed it (docs/protocol.md §5.10):
// every answer is the one a replay of the same events gives.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import type { HistoryEvent, WorkflowTaskRequest } from "../src/common.js";
import { WorkflowInstance, handleWorkflowTask } from "../src/core/workflow_instance.js";
import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  CancelledFailure,
  ChildWorkflowFailure,
  TerminatedFailure,
  TimeoutFailure,
  WorkflowExecutionAlreadyStartedError,
  condition,
  continueAsNew,
  defineSignal,
  defineUpdate,
  deprecatePatch,
  defineSearchAttributeKey,
  SearchAttributeType,
  type SearchAttributeUpdatePair,
  upsertSearchAttributes,
  executeActivity,
  executeChild,
  getExternalWorkflowHandle,
  patched,
  proxyLocalActivities,
  setHandler,
  sleep,
} from "../src/workflow.js";
import { REPO_ROOT } from "./paths.js";

type Step = Record<string, any>;
interface Script {
  main: Step[];
  signals?: string[];
  updates?: Record<string, Step[]>;
}
interface Vector {
  name: string;
  script: Script;
  workflow_task: WorkflowTaskRequest;
  expect: { commands?: unknown[]; non_determinism?: { event_id: number; message: string } };
}

const DIR = path.join(REPO_ROOT, "tests", "replay");
const FILES = readdirSync(DIR)
  .filter((f) => f.endsWith(".json"))
  .sort();

function label(err: unknown): string | null {
  if (err === undefined || err === null) return null;
  const kinds: [new (...args: any[]) => Error, string][] = [
    [ActivityFailure, "ActivityError"],
    [ChildWorkflowFailure, "ChildWorkflowError"],
    [WorkflowExecutionAlreadyStartedError, "WorkflowAlreadyStarted"],
    [ApplicationFailure, "ApplicationError"],
    [TimeoutFailure, "TimeoutError"],
    [TerminatedFailure, "TerminatedError"],
    [CancelledFailure, "CancelledError"],
  ];
  for (const [cls, name] of kinds) if (err instanceof cls) return name;
  return err instanceof Error ? err.name : String(err);
}

function errorValue(err: unknown): unknown {
  return { error: label(err), cause: label(err instanceof Error ? err.cause : undefined) };
}

class Done {
  constructor(readonly value: unknown) {}
}

function duration(text: string): number {
  const m = /^([0-9.]+)(ms|s|m|h)$/.exec(text);
  if (m === null) throw new Error(`bad duration ${text}`);
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  return Number(m[1]) * unit[m[2]!]!;
}

/** Runs one script (tests/replay/README.md) as workflow code. */
class Interpreter {
  vars = new Map<string, unknown>();
  log: string[] = [];
  signals = new Map<string, unknown[]>();
  handles = new Map<string, { scope: CancellationScope; outcome: Promise<unknown> }>();

  constructor(readonly script: Script) {}

  value(v: unknown): unknown {
    if (Array.isArray(v)) return v.map((x) => this.value(x));
    if (v !== null && typeof v === "object") {
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length === 1 && keys[0] === "$") return o.$ === "log" ? [...this.log] : (this.vars.get(String(o.$)) ?? null);
      return Object.fromEntries(keys.map((k) => [k, this.value(o[k])]));
    }
    return v;
  }

  async steps(steps: Step[]): Promise<unknown> {
    for (const s of steps) {
      if ("return" in s) return this.value(s.return);
      await this.step(s);
    }
    return null;
  }

  runOne(s: Step): Promise<unknown> {
    if ("activity" in s) {
      return executeActivity(
        s.activity,
        {
          startToCloseTimeout: "10s",
          ...(s.schedule_to_close !== undefined ? { scheduleToCloseTimeout: s.schedule_to_close } : {}),
          ...(s.id !== undefined ? { activityId: s.id } : {}),
          cancellationType: ActivityCancellationType[(s.cancellation ?? "TRY_CANCEL") as keyof typeof ActivityCancellationType],
        },
        ...(this.value(s.input ?? []) as unknown[]),
      );
    }
    if ("local_activity" in s) {
      const stub = proxyLocalActivities({ startToCloseTimeout: "10s" }) as Record<string, (...args: unknown[]) => Promise<unknown>>;
      return stub[s.local_activity]!(...(this.value(s.input ?? []) as unknown[]));
    }
    if ("timer" in s) return sleep(duration(s.timer)).then(() => null);
    if ("child" in s) {
      const c = s.child;
      return executeChild(c.workflow_type, { workflowId: c.workflow_id, args: this.value(c.input ?? []) as unknown[] });
    }
    if ("signal_external" in s) {
      const x = s.signal_external;
      return getExternalWorkflowHandle(x.workflow_id)
        .signal(x.signal, ...(this.value(x.input ?? []) as unknown[]))
        .then(() => null);
    }
    if ("cancel_external" in s) {
      return getExternalWorkflowHandle(s.cancel_external.workflow_id)
        .cancel()
        .then(() => null);
    }
    if ("wait_signal" in s) {
      const name = String(s.wait_signal);
      return condition(() => (this.signals.get(name)?.length ?? 0) > 0).then(() => this.signals.get(name)!.shift());
    }
    if ("gather" in s) return Promise.all((s.gather as Step[]).map((b) => this.runOne(b)));
    throw new Error(`unknown step ${JSON.stringify(s)}`);
  }

  async step(s: Step): Promise<void> {
    if ("complete" in s) throw new Done(this.value(s.complete));
    if ("fail" in s) throw ApplicationFailure.create({ message: s.fail, type: "ScriptFailure", nonRetryable: true });
    if ("continue_as_new" in s) {
      await continueAsNew(...(this.value(s.continue_as_new.input ?? []) as unknown[]));
      return;
    }
    if ("log" in s) {
      this.log.push(s.log);
      return;
    }
    if ("patched" in s) {
      await this.steps(patched(s.patched) ? s.then : s.else);
      return;
    }
    if ("deprecate_patch" in s) {
      deprecatePatch(s.deprecate_patch);
      return;
    }
    if ("upsert" in s) {
      const types: Record<string, SearchAttributeType> = {
        Keyword: SearchAttributeType.KEYWORD,
        Text: SearchAttributeType.TEXT,
        Int: SearchAttributeType.INT,
        Double: SearchAttributeType.DOUBLE,
        Bool: SearchAttributeType.BOOL,
        Datetime: SearchAttributeType.DATETIME,
        KeywordList: SearchAttributeType.KEYWORD_LIST,
      };
      const updates = Object.entries(s.upsert as Record<string, { type: string; value: unknown }>).map(([name, typed]) => {
        const type = types[typed.type];
        assert.ok(type !== undefined, typed.type);
        return { key: defineSearchAttributeKey(name, type), value: typed.value } as SearchAttributeUpdatePair;
      });
      upsertSearchAttributes(updates);
      return;
    }
    if ("start" in s) {
      const scope = new CancellationScope();
      const outcome = scope.run(() => this.runOne(s.start));
      outcome.catch(() => undefined);
      this.handles.set(s.name, { scope, outcome });
      return;
    }
    if ("cancel" in s) {
      this.handles.get(s.cancel)!.scope.cancel();
      return;
    }
    if ("wait" in s) {
      let result: unknown;
      try {
        result = await this.handles.get(s.wait)!.outcome;
      } catch (err) {
        result = errorValue(err);
      }
      if ("as" in s) this.vars.set(s.as, result);
      return;
    }
    let result: unknown;
    try {
      result = await this.runOne(s);
    } catch (err) {
      const caught = err instanceof ApplicationFailure || err instanceof ActivityFailure || err instanceof ChildWorkflowFailure || err instanceof WorkflowExecutionAlreadyStartedError;
      if (!s.catch || !caught) throw err;
      result = errorValue(err);
    }
    if ("as" in s) this.vars.set(s.as, result);
  }
}

function workflowOf(script: Script): (...args: unknown[]) => Promise<unknown> {
  return async function Order(): Promise<unknown> {
    const i = new Interpreter(script);
    for (const name of script.signals ?? []) {
      setHandler(defineSignal<unknown[]>(name), (...args: unknown[]) => {
        i.log.push(`signal:${name}`);
        if (!i.signals.has(name)) i.signals.set(name, []);
        i.signals.get(name)!.push(args.length > 0 ? args[0] : null);
      });
    }
    for (const [name, steps] of Object.entries(script.updates ?? {})) {
      setHandler(defineUpdate<unknown, []>(name), async () => {
        i.log.push(`update:${name}`);
        return i.steps(steps);
      });
    }
    try {
      await i.steps(script.main);
    } catch (err) {
      if (err instanceof Done) return err.value;
      throw err;
    }
    return null;
  };
}

/** Stack traces are the language's own: not part of the contract. */
function strip(commands: unknown[]): unknown[] {
  const out = JSON.parse(JSON.stringify(commands)) as { attributes: Record<string, unknown> }[];
  for (const c of out) {
    const f = c.attributes.failure;
    if (f !== null && typeof f === "object") delete (f as Record<string, unknown>).stack_trace;
  }
  return out;
}

test("there are at least 60 replay vectors", () => {
  assert.ok(FILES.length >= 60, `${FILES.length} vectors`);
});

for (const file of FILES) {
  const vector = JSON.parse(readFileSync(path.join(DIR, file), "utf8")) as Vector;
  test(`replay vector ${file}`, async () => {
    const answer = (await handleWorkflowTask(workflowOf(vector.script), vector.workflow_task)) as {
      commands?: unknown[];
      failure?: { cause?: string; failure: { type?: string; message: string } };
    };
    const nd = vector.expect.non_determinism;
    if (nd === undefined) {
      assert.equal(answer.failure, undefined, JSON.stringify(answer.failure));
      assert.deepEqual(strip(answer.commands ?? []), vector.expect.commands);
    } else {
      assert.ok(answer.failure !== undefined, `expected non-determinism, got ${JSON.stringify(answer)}`);
      assert.equal(answer.failure.cause, "NON_DETERMINISTIC_ERROR");
      assert.equal(answer.failure.failure.type, "NonDeterminismError");
      assert.equal(answer.failure.failure.message, nd.message);
    }
  });
}

/** The indices of the WorkflowTaskStarted events answered with commands (followed by WorkflowTaskCompleted), after the last failed or timed-out task. */
function answeredTasks(history: HistoryEvent[]): number[] {
  let from = 0;
  history.forEach((e, i) => {
    if (e.event_type === "WorkflowTaskFailed" || e.event_type === "WorkflowTaskTimedOut") from = i + 1;
  });
  const out: number[] = [];
  for (let i = from; i < history.length - 1; i++) {
    if (history[i]!.event_type === "WorkflowTaskStarted" && history[i + 1]!.event_type === "WorkflowTaskCompleted") out.push(i);
  }
  return out;
}

/** The event each command records (docs/protocol.md §14.4). */
const RECORDS: Record<string, string> = {
  ScheduleActivityTask: "ActivityTaskScheduled",
  RequestCancelActivityTask: "ActivityTaskCancelRequested",
  StartTimer: "TimerStarted",
  CancelTimer: "TimerCanceled",
  RecordMarker: "MarkerRecorded",
  UpsertWorkflowSearchAttributes: "UpsertWorkflowSearchAttributes",
  CompleteWorkflowUpdate: "WorkflowExecutionUpdateCompleted",
  StartChildWorkflowExecution: "StartChildWorkflowExecutionInitiated",
  SignalExternalWorkflowExecution: "SignalExternalWorkflowExecutionInitiated",
  RequestCancelExternalWorkflowExecution: "RequestCancelExternalWorkflowExecutionInitiated",
};
const RECORDED = new Set(Object.values(RECORDS));

/** Whether `commands`, answered at the WorkflowTaskStarted `history[at]`, are what the history recorded after it: this code made the history. */
function recorded(history: HistoryEvent[], at: number, commands: { command_type: string }[]): boolean {
  const events: string[] = [];
  for (let i = at + 2; i < history.length && RECORDED.has(history[i]!.event_type); i++) events.push(history[i]!.event_type);
  return JSON.stringify(commands.map((c) => RECORDS[c.command_type])) === JSON.stringify(events);
}

for (const file of FILES) {
  const vector = JSON.parse(readFileSync(path.join(DIR, file), "utf8")) as Vector;
  const history = vector.workflow_task.history;
  const cuts = answeredTasks(history);
  if (history.at(-1)?.event_type !== "WorkflowTaskStarted" || cuts.length === 0) continue;
  test(`replay vector ${file}, task by task in one instance`, async () => {
    const fn = workflowOf(vector.script);
    const task = (events: HistoryEvent[], partial: boolean): WorkflowTaskRequest => ({
      ...vector.workflow_task,
      history: events,
      history_length: events.at(-1)!.event_id,
      ...(partial ? { history_first_event_id: events[0]!.event_id } : {}),
    });
    const first = cuts[0]!;
    const instance = new WorkflowInstance(fn, task(history.slice(0, first + 1), false));
    let answer = await instance.activate();
    assert.deepEqual(answer, await handleWorkflowTask(fn, task(history.slice(0, first + 1), false)));
    let at = first;
    for (const end of [...cuts.slice(1), history.length - 1]) {
      assert.ok("commands" in answer, JSON.stringify(answer));
      const replayed = await handleWorkflowTask(fn, task(history.slice(0, end + 1), false));
      // A history this code did not make (a change of code, a non-determinism vector): nothing to go on from.
      if (!recorded(history, at, answer.commands) || "failure" in replayed) return;
      assert.ok(instance.continueWith(fn, task(history.slice(at + 1, end + 1), true)), `continue at event ${history[at + 1]!.event_id}`);
      answer = await instance.activate();
      assert.deepEqual(strip((answer as { commands?: unknown[] }).commands ?? []), strip(replayed.commands), `the task ending at event ${history[end]!.event_id}`);
      at = end;
    }
    assert.deepEqual(strip((answer as { commands?: unknown[] }).commands ?? []), vector.expect.commands);
  });
}
