/**
 * Deterministic replay of one workflow task (protocol.md §5; the same
 * algorithm as sdk-py's _workflow_instance.py).
 *
 * A push's whole history (paged in first when the push carries only its
 * newest events, protocol.md §5.10) is replayed by a fresh instance:
 *
 * 1. The history is cut into activations at each WorkflowTaskStarted that
 *    was followed by WorkflowTaskCompleted, plus the final
 *    WorkflowTaskStarted (the task being answered). A task that failed or
 *    timed out produced nothing and is skipped.
 * 2. The events that arrived since the previous activation are its jobs,
 *    applied in two groups (protocol.md §14.2): the start, signals and
 *    updates first, in history order, then the workflow's promise jobs run
 *    until nothing is left to do, with `condition` predicates re-checked
 *    each time the job queue drains; then the results and a cancellation
 *    request, in history order, and the workflow runs until blocked again.
 * 3. For a replayed activation, the commands produced must match, in
 *    order, the command events recorded after its WorkflowTaskCompleted; a
 *    mismatch is a NonDeterminismError. The final activation's commands are
 *    the answer.
 *
 * A long-lived handler may keep the instance after answering, and feed it
 * the next task's new events only (a sticky push, §5.10): replay goes on
 * from where it stood, the answered commands matched as in step 3.
 *
 * Workflow code runs in the handler's own realm. While an activation runs
 * (and only then), `Date` and `Math.random` are replaced by versions that
 * are deterministic for workflow code. Where AsyncLocalStorage exists,
 * workflow code runs in its instance's async context and activations run
 * concurrently; elsewhere they take turns process-wide.
 */

import {
  ActivityCancellationType,
  type ActivityOptions,
  ActivityFailure,
  ApplicationFailure,
  BatonFailure,
  ContinueAsNew,
  ChildWorkflowCancellationType,
  ChildWorkflowFailure,
  TerminatedFailure,
  WorkflowExecutionAlreadyStartedError,
  CancelledFailure,
  type Command,
  type Duration,
  type FailureJson,
  type HistoryEvent,
  type LocalActivityOptions,
  NonDeterminismError,
  type QueryRequest,
  type QueryResponse,
  type RetryState,
  TimeoutFailure,
  type TimeoutType,
  type UpdateValidationRequest,
  type UpdateValidationResponse,
  type WorkflowTaskRequest,
  type WorkflowTaskResponse,
  argsFromPayload,
  errorToFailure,
  isCancellation,
  failureToError,
  formatDuration,
  msToNumber,
  retryPolicyToWire,
  type SearchAttributeUpdatePair,
  searchAttributeToWire,
  TypedSearchAttributes,
} from "../common.js";
import type {
  RequestCancelExternalWorkflowExecutionAttributes,
  ScheduleActivityTaskAttributes,
  SignalExternalWorkflowExecutionAttributes,
  StartChildWorkflowExecutionAttributes,
} from "../generated/openapi.js";
import { newStorage } from "./als.js";
import { CancellationScope, setScopeHost } from "./cancellation_scope.js";

export const PATCH_MARKER_NAME = "core_patch";
/** The marker that records a local activity's outcome (protocol.md §14.6). */
export const LOCAL_ACTIVITY_MARKER_NAME = "LocalActivity";
/** The share of the task timeout after which running local activities make the task answer early (a heartbeat). */
const HEARTBEAT_FRACTION = 0.8;

export type WorkflowFunction = (...args: any[]) => Promise<unknown>;

/** An update's handler and optional validator (`setHandler(updateDef, handler, { validator })`). */
export interface UpdateHandler {
  handler: (...args: any[]) => unknown;
  validator?: ((...args: any[]) => void) | undefined;
}

export interface WorkflowInfo {
  workflowId: string;
  runId: string;
  workflowType: string;
  taskQueue: string;
  namespace: string;
  /** The run's attempt: 1, or more when a workflow retry policy started it. */
  attempt: number;
  /** The run this one continued (continue-as-new or a retry), if any. */
  continuedFromExecutionRunId?: string;
  /** The first run of the chain. */
  firstExecutionRunId: string;
  /** The memo given at start (carried through continue-as-new). */
  memo?: Record<string, unknown>;
  /** The run's custom search attributes: as started, then as this code upserted them. */
  typedSearchAttributes: TypedSearchAttributes;
  historyLength: number;
  historySize: number;
  continueAsNewSuggested: boolean;
  startTime: Date;
  runStartTime: Date;
  /** The run timeout in ms, if the run has one. */
  runTimeoutMs?: number;
  unsafe: { isReplaying: boolean; now(): number };
}

const COMMAND_EVENTS = new Set([
  "ActivityTaskScheduled",
  "ActivityTaskCancelRequested",
  "TimerStarted",
  "TimerCanceled",
  "MarkerRecorded",
  "UpsertWorkflowSearchAttributes",
  "WorkflowExecutionCompleted",
  "WorkflowExecutionFailed",
  "WorkflowExecutionCanceled",
  "WorkflowExecutionContinuedAsNew",
  "WorkflowExecutionUpdateCompleted",
  "StartChildWorkflowExecutionInitiated",
  "SignalExternalWorkflowExecutionInitiated",
  "RequestCancelExternalWorkflowExecutionInitiated",
]);
const RESOLUTION_EVENTS = new Set([
  "ActivityTaskCompleted",
  "ActivityTaskFailed",
  "ActivityTaskTimedOut",
  "ActivityTaskCanceled",
  "TimerFired",
  "WorkflowExecutionSignaled",
  "WorkflowExecutionCancelRequested",
  "WorkflowExecutionUpdateAdmitted",
  "ChildWorkflowExecutionStarted",
  "StartChildWorkflowExecutionFailed",
  "ChildWorkflowExecutionCompleted",
  "ChildWorkflowExecutionFailed",
  "ChildWorkflowExecutionCanceled",
  "ChildWorkflowExecutionTimedOut",
  "ChildWorkflowExecutionTerminated",
  "ExternalWorkflowExecutionSignaled",
  "SignalExternalWorkflowExecutionFailed",
  "ExternalWorkflowExecutionCancelRequested",
  "RequestCancelExternalWorkflowExecutionFailed",
]);
const FIRST_JOBS = new Set(["WorkflowExecutionStarted", "WorkflowExecutionSignaled", "WorkflowExecutionUpdateAdmitted"]);
const ACTIVITY_CLOSED = new Set(["ActivityTaskCompleted", "ActivityTaskFailed", "ActivityTaskTimedOut", "ActivityTaskCanceled"]);
const CLOSING: Record<string, string> = {
  CompleteWorkflowExecution: "WorkflowExecutionCompleted",
  FailWorkflowExecution: "WorkflowExecutionFailed",
  CancelWorkflowExecution: "WorkflowExecutionCanceled",
  ContinueAsNewWorkflowExecution: "WorkflowExecutionContinuedAsNew",
};

interface PendingCommand {
  command: Command;
  activity?: ActivityState;
  timer?: TimerState;
  child?: ChildState;
  external?: ExternalState;
}

/** A child workflow this run started (protocol.md §5.6). */
interface ChildState {
  workflowId: string;
  workflowType: string;
  cancellationType: ChildWorkflowCancellationType;
  started: Deferred<string>;
  result: Deferred<unknown>;
  runId?: string;
  /** The child's outcome reached the workflow (or its promise was settled by a cancellation). */
  done: boolean;
}

/** A signal or cancellation request to another workflow, waiting for its outcome. */
interface ExternalState {
  d: Deferred<void>;
  done: boolean;
}

interface ActivityState {
  activityId: string;
  activityType: string;
  cancellationType: ActivityCancellationType;
  scheduledEventId: number;
  /** False when the call opted out of running inline (`inline: false`, protocol.md §5.9). */
  inline: boolean;
  resolve(v: unknown): void;
  reject(e: Error): void;
  done: boolean;
}

/** One local activity: what to run, where its attempts stand (`pending` while an attempt's outcome is awaited). */
export interface LocalActivityState {
  activityId: string;
  activityType: string;
  args: unknown[];
  options: LocalActivityOptions;
  attempt: number;
  originalScheduleTime?: string;
  pending: boolean;
  done: boolean;
  backoffTimer?: TimerState;
  resolve(v: unknown): void;
  reject(e: Error): void;
}

/** Runs local activities' attempts for the task being answered (core/local_activity.ts). */
export interface LocalActivityRunner {
  /** Runs `la`'s attempts from `la.attempt`; resolves (never rejects) with the outcome the marker records. */
  run(la: LocalActivityState, request: WorkflowTaskRequest): Promise<Record<string, unknown>>;
  /** Stops them: the workflow cancelled the local activity. */
  cancel(la: LocalActivityState, request: WorkflowTaskRequest): void;
}

interface TimerState {
  timerId: string;
  resolve(): void;
  reject(e: Error): void;
  fired: boolean;
  cancelled: boolean;
}

/** Fails the task (not the workflow): a bug in workflow code. */
class TaskFailure extends Error {}

function rec(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

// What a non-determinism message shows of a command or event (protocol.md
// §14.5): the members that matching compares, JSON-quoted.
const DESCRIBED: Record<string, string[]> = {
  ScheduleActivityTask: ["activity_type", "activity_id"],
  ActivityTaskScheduled: ["activity_type", "activity_id"],
  RequestCancelActivityTask: ["activity_id"],
  ActivityTaskCancelRequested: ["scheduled_event_id"],
  StartTimer: ["timer_id"],
  TimerStarted: ["timer_id"],
  CancelTimer: ["timer_id"],
  TimerCanceled: ["timer_id"],
  RecordMarker: ["marker_name", "patch_id", "activity_type", "activity_id"],
  MarkerRecorded: ["marker_name", "patch_id", "activity_type", "activity_id"],
  UpsertWorkflowSearchAttributes: ["names"],
  CompleteWorkflowUpdate: ["update_id"],
  WorkflowExecutionUpdateCompleted: ["update_id"],
  StartChildWorkflowExecution: ["workflow_type", "workflow_id"],
  StartChildWorkflowExecutionInitiated: ["workflow_type", "workflow_id"],
  SignalExternalWorkflowExecution: ["workflow_id", "signal_name"],
  SignalExternalWorkflowExecutionInitiated: ["workflow_id", "signal_name"],
  RequestCancelExternalWorkflowExecution: ["workflow_id"],
  RequestCancelExternalWorkflowExecutionInitiated: ["workflow_id"],
};

function describe(isEvent: boolean, name: string, attributes: unknown): string {
  let keys = DESCRIBED[name];
  if (keys === undefined) return name;
  const a = rec(attributes);
  const marker = name === "RecordMarker" || name === "MarkerRecorded";
  const member = (k: string): unknown => {
    if (marker && k !== "marker_name") return rec(a.details)[k];
    if (k === "names") return Object.keys(rec(a.search_attributes)).sort();
    if (k === "workflow_id" && isEvent && !("workflow_id" in a)) return rec(a.workflow_execution).workflow_id;
    return a[k];
  };
  if (marker) keys = keys.filter((k) => k === "marker_name" || member(k) !== undefined);
  return `${name}(${keys.map((k) => `${k}=${JSON.stringify(member(k) ?? null)}`).join(", ")})`;
}

function describeCommand(c: Command): string {
  return describe(false, c.command_type, c.attributes);
}

function describeEvent(e: HistoryEvent): string {
  return describe(true, e.event_type, e.attributes);
}

// ---- deterministic randomness: xmur3 seed + sfc32 ----
function seedFrom(s: string): () => number {
  let h = 1779033703 ^ s.length;
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 3432918353);
    h = (h << 13) | (h >>> 19);
  }
  const next = (): number => {
    h = Math.imul(h ^ (h >>> 16), 2246822507);
    h = Math.imul(h ^ (h >>> 13), 3266489909);
    return (h ^= h >>> 16) >>> 0;
  };
  let a = next(), b = next(), c = next(), d = next();
  return () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

// ---- the current activation, and the global patches that exist while it runs ----
let current: WorkflowInstance | undefined;
let lock: Promise<unknown> = Promise.resolve();


// Where the runtime has AsyncLocalStorage, workflow code runs inside the
// instance's async context, so code that is not workflow code (another
// request handled meanwhile, the test runner) sees the real Date and
// Math.random even while an activation runs. Elsewhere, everything that
// runs during an activation sees the workflow's.
const storage = newStorage<WorkflowInstance>();

/** Activations running now (several at once where AsyncLocalStorage exists). */
let active = 0;

/** The running activation's instance if the caller is its workflow code. */
export function maybeCurrentInstance(): WorkflowInstance | undefined {
  if (storage === undefined) return current;
  return active > 0 ? storage.getStore() : undefined;
}

/** The instance whose activation is running (workflow APIs call this). */
export function currentInstance(api: string): WorkflowInstance {
  const inst = maybeCurrentInstance();
  if (inst === undefined) {
    throw new Error(`${api}() may only be called from workflow code while it runs`);
  }
  return inst;
}

const RealDate = Date;
const realRandom = Math.random;

function makeDeterministicDate(): DateConstructor {
  const now = (): number => maybeCurrentInstance()?.nowMs ?? RealDate.now();
  class WorkflowDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(now());
      else super(...(args as [string | number]));
    }
    static override now(): number {
      return now();
    }
  }
  return WorkflowDate as unknown as DateConstructor;
}
const DeterministicDate = makeDeterministicDate();

function installDeterminism(): void {
  globalThis.Date = DeterministicDate;
  Math.random = () => {
    const inst = maybeCurrentInstance();
    return inst !== undefined ? inst.random() : realRandom();
  };
}
function restoreDeterminism(): void {
  globalThis.Date = RealDate;
  Math.random = realRandom;
}

setScopeHost({
  rootScope: () => currentInstance("CancellationScope.current").rootScope,
  sleep: (ms) => currentInstance("sleep").startTimer(ms),
});

type NodeProcess = { nextTick?: (fn: () => void) => void; versions?: Record<string, string | undefined> };
const proc = (globalThis as { process?: NodeProcess }).process;
const nodeNextTick = proc?.nextTick !== undefined && proc.versions?.node !== undefined && proc.versions.bun === undefined && proc.versions.deno === undefined ? proc.nextTick : undefined;

/**
 * Resolves once the workflow is idle: every promise job queued so far, and
 * every job those queue, has run. On Node a `process.nextTick` callback
 * queued from a promise job runs only once the microtask queue is empty
 * (Node drains it before the next-tick queue), so this costs no trip
 * around the event loop (a `setImmediate` waited behind every other
 * request's I/O, once per replayed activation). Elsewhere, a macrotask.
 * Always called from a promise job (an async function after an await).
 */
const drainTurn: () => Promise<void> =
  nodeNextTick !== undefined
    ? () => new Promise((r) => nodeNextTick(r))
    : typeof setImmediate === "function"
      ? () => new Promise((r) => setImmediate(r))
      : () => new Promise((r) => setTimeout(r, 0));

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: Error): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Workflow code may start an activity or a timer and never await it: its
  // failure must not become an unhandled rejection that kills the process.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

export class WorkflowInstance {
  nowMs = 0;
  /** The scope the workflow function runs in; cancelled when the run is asked to cancel. */
  readonly rootScope = CancellationScope.root();
  replaying = true;
  readonly random: () => number;
  readonly info: WorkflowInfo;
  private commands: PendingCommand[] = [];
  private unmatched: PendingCommand[] = [];
  private activitySeq = 0;
  private timerSeq = 0;
  private activitiesByEvent = new Map<number, ActivityState>();
  private childrenByEvent = new Map<number, ChildState>();
  private externalsByEvent = new Map<number, ExternalState>();
  private childSeq = 0;
  private timers = new Map<string, TimerState>();
  private conditions: { fn: () => boolean; d: Deferred<boolean> }[] = [];
  private patches = new Map<string, boolean>();
  private lookaheadPatches = new Set<string>();
  private closed = false;
  /** The closing command, held back so that it is always the activation's last (protocol.md §5.2). */
  private closing: PendingCommand | undefined;
  private updateHandlers = new Map<string, UpdateHandler>();
  private updateBuffer: { id: string; name: string; args: unknown[] }[] = [];
  private cancelRequested = false;
  private signalHandlers = new Map<string, (...args: any[]) => unknown>();
  private signalBuffer: { name: string; args: unknown[] }[] = [];
  /** Running the events no task delivered yet, for a query: new code paths are taken, as the next task will. */
  private queryTail = false;
  private queryHandlers = new Map<string, (...args: any[]) => unknown>();
  private taskError: unknown = undefined;
  private hasTaskError = false;
  private localActivities = new Map<string, LocalActivityState>();
  private heartbeatAt: number;
  // Where replay stands (protocol.md §14.1): the events being replayed, the
  // next one to read, the jobs read since the last activation, whether the
  // workflow function started. A sticky push (§5.10) goes on from here.
  private events: HistoryEvent[];
  private at = 0;
  private pending: HistoryEvent[] = [];
  private started = false;
  /** The WorkflowTaskStarted of the task last answered with commands, if any. */
  private answeredThrough: number | undefined;
  /** Timers with a TimerFired and activities (by scheduled event id) with a closing event, in all the events read: cancels of them are lenient (§14.4). */
  private firedTimers = new Set<string>();
  private closedActivities = new Set<number>();
  private disposed = false;

  constructor(
    private readonly fn: WorkflowFunction,
    private request: WorkflowTaskRequest,
    /** Replaying for a query: the history is persisted events only and no task is answered. */
    private readonly forQuery = false,
    /** Runs local activities; without one (replayers, queries) they wait for their markers. */
    private readonly localRunner?: LocalActivityRunner,
  ) {
    this.heartbeatAt = RealDate.now() + HEARTBEAT_FRACTION * taskTimeoutMs(request);
    this.events = request.history;
    this.learn(request.history);
    this.random = seedFrom(request.run_id);
    const first = request.history[0];
    const attrs = rec(first?.attributes);
    const start = first ? RealDate.parse(first.event_time) : 0;
    const runTimeout = typeof attrs.workflow_run_timeout === "string" ? msToNumber(attrs.workflow_run_timeout) : undefined;
    const self = this;
    this.info = {
      workflowId: request.workflow_id,
      runId: request.run_id,
      workflowType: request.workflow_type,
      taskQueue: request.task_queue,
      namespace: request.namespace,
      attempt: typeof attrs.attempt === "number" ? attrs.attempt : 1,
      firstExecutionRunId: typeof attrs.first_execution_run_id === "string" ? attrs.first_execution_run_id : request.run_id,
      ...(typeof attrs.continued_execution_run_id === "string" ? { continuedFromExecutionRunId: attrs.continued_execution_run_id } : {}),
      ...(attrs.memo !== null && typeof attrs.memo === "object" ? { memo: attrs.memo as Record<string, unknown> } : {}),
      typedSearchAttributes: TypedSearchAttributes.fromWire(attrs.search_attributes),
      historyLength: request.history_length ?? request.history.length,
      historySize: request.history_size_bytes ?? 0,
      continueAsNewSuggested: request.suggest_continue_as_new ?? false,
      startTime: new RealDate(start),
      runStartTime: new RealDate(start),
      ...(runTimeout !== undefined ? { runTimeoutMs: runTimeout } : {}),
      unsafe: {
        get isReplaying() {
          return self.replaying;
        },
        now: () => RealDate.now(),
      },
    };
  }

  /** Without AsyncLocalStorage, `current` names the instance, so activations take turns; with it, each workflow's code finds its own instance. */
  private async takeTurn(): Promise<() => void> {
    const prev = lock;
    const mine = deferred<void>();
    if (storage === undefined) {
      lock = prev.then(() => mine.promise);
      await prev;
    } else mine.resolve();
    return () => mine.resolve();
  }

  /**
   * Answers a query (protocol.md §5.5): replays the persisted history (the
   * commands produced are discarded), then runs the query's handler, which
   * must be synchronous.
   */
  async answerQuery(name: string, args: unknown[]): Promise<QueryResponse> {
    const release = await this.takeTurn();
    try {
      await this.replay();
      const fn = this.queryHandlers.get(name);
      if (fn === undefined) {
        const known = [...this.queryHandlers.keys()].sort();
        return {
          failure: {
            message: `Workflow did not register a handler for ${name}. Registered queries: [${known.join(" ")}]`,
            type: "QueryNotRegisteredError",
          },
        };
      }
      const before = this.commands.length;
      const result = this.runSync(() => fn(...args));
      if (this.commands.length !== before) {
        return {
          failure: {
            message: `the handler of query ${name} issued a command (started an activity or a timer): query handlers must not change the workflow`,
            type: "TypeError",
          },
        };
      }
      if (result !== null && typeof result === "object" && typeof (result as { then?: unknown }).then === "function") {
        (result as Promise<unknown>).then(undefined, () => undefined);
        return {
          failure: {
            message: `the handler of query ${name} returned a promise: query handlers must be synchronous`,
            type: "TypeError",
          },
        };
      }
      return { result: result === undefined ? null : result };
    } catch (err) {
      return { failure: errorToFailure(err, false) };
    } finally {
      release();
    }
  }

  /** Runs `fn` as workflow code (deterministic Date and Math.random), synchronously. */
  private runSync<R>(fn: () => R): R {
    if (storage === undefined) current = this;
    if (active++ === 0) installDeterminism();
    try {
      return this.inContext(fn);
    } finally {
      if (--active === 0) restoreDeterminism();
      if (storage === undefined) current = undefined;
    }
  }

  /** Replays the history and answers the task. */
  async activate(): Promise<WorkflowTaskResponse> {
    const release = await this.takeTurn();
    try {
      return await this.replay();
    } catch (err) {
      if (err instanceof NonDeterminismError) {
        const failure = errorToFailure(err);
        failure.type = "NonDeterminismError";
        return { failure: { cause: "NON_DETERMINISTIC_ERROR", failure } };
      }
      return { failure: { cause: "WORKFLOW_WORKER_UNHANDLED_FAILURE", failure: errorToFailure(err) } };
    } finally {
      release();
    }
  }

  // ---- sticky pushes (protocol.md §5.10): the next task goes on in this instance ----

  /**
   * Takes the run's next workflow task, sent only the events that follow
   * the task this instance answered last: `request.history` starts with
   * that task's WorkflowTaskCompleted and ends with the new task's
   * WorkflowTaskStarted. The answered commands are then matched against
   * the command events, as replay matches them, and {@link activate}
   * answers the new task. False (nothing changed) when the push does not
   * follow on, `fn` is not the workflow function this instance runs, or a
   * task failed or timed out in between: the caller replays instead.
   */
  continueWith(fn: WorkflowFunction, request: WorkflowTaskRequest): boolean {
    const events = request.history;
    const first = events[0];
    const fits =
      !this.disposed &&
      !this.closed &&
      fn === this.fn &&
      request.run_id === this.request.run_id &&
      request.workflow_type === this.request.workflow_type &&
      this.answeredThrough !== undefined &&
      request.history_first_event_id === this.answeredThrough + 1 &&
      first?.event_type === "WorkflowTaskCompleted" &&
      first.event_id === this.answeredThrough + 1 &&
      events.at(-1)?.event_type === "WorkflowTaskStarted" &&
      !events.some((e) => e.event_type === "WorkflowTaskFailed" || e.event_type === "WorkflowTaskTimedOut");
    if (!fits) return false;
    this.request = request;
    this.events = events;
    this.at = 1; // past the WorkflowTaskCompleted: what follows is what the answer produced
    this.answeredThrough = undefined;
    this.unmatched.push(...this.commands);
    this.commands = [];
    this.learn(events);
    this.heartbeatAt = RealDate.now() + HEARTBEAT_FRACTION * taskTimeoutMs(request);
    this.info.historyLength = request.history_length ?? events.at(-1)!.event_id;
    this.info.historySize = request.history_size_bytes ?? this.info.historySize;
    this.info.continueAsNewSuggested = request.suggest_continue_as_new ?? false;
    return true;
  }

  /** The workflow closed (completed, failed, was cancelled or continued as new): it has no next task. */
  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Tears the instance down (evicted from the sticky cache): it drops what
   * it holds and can answer nothing more. The workflow's pending promises
   * never settle and are collected with it; local activity attempts still
   * running stay with the runner, for the run's next task (§14.6).
   */
  dispose(): void {
    this.disposed = true;
    this.events = [];
    this.pending = [];
    this.commands = [];
    this.unmatched = [];
    this.conditions = [];
    this.timers.clear();
    this.activitiesByEvent.clear();
    this.childrenByEvent.clear();
    this.externalsByEvent.clear();
    this.localActivities.clear();
    this.signalHandlers.clear();
    this.queryHandlers.clear();
    this.updateHandlers.clear();
    this.signalBuffer = [];
    this.updateBuffer = [];
  }

  /**
   * Reads the events from where replay stands (the start, or the task this
   * instance answered last) up to the task being answered, and answers it.
   */
  private async replay(): Promise<WorkflowTaskResponse> {
    if (this.disposed) throw new Error("this workflow instance was evicted");
    const events = this.events;
    if (this.at === 0) {
      const first = events[0];
      if (!first || first.event_type !== "WorkflowExecutionStarted") {
        throw new Error("history does not begin with WorkflowExecutionStarted");
      }
      this.pending = [first];
      this.at = 1;
    }
    for (let i = this.at; i < events.length; i++) {
      const e = events[i]!;
      const t = e.event_type;
      if (t === "WorkflowTaskStarted") {
        // A query's history has no task to answer: every activation is replayed.
        const isLast = !this.forQuery && i === events.length - 1;
        const next = events[i + 1];
        if (!isLast && next?.event_type !== "WorkflowTaskCompleted") continue;
        this.expectAllMatched(e);
        this.replaying = !isLast;
        this.nowMs = RealDate.parse(e.event_time);
        this.lookaheadPatches = isLast ? new Set() : patchMarkers(events, i + 2);
        const batch = this.pending;
        this.pending = [];
        await this.runActivation(batch, !this.started);
        this.started = true;
        if (this.hasTaskError) throw this.taskError;
        if (this.closing !== undefined) {
          this.commands.push(this.closing);
          this.closing = undefined;
        }
        // A cancel whose target closed in the history (in this activation
        // too: signals ran first) has nothing to cancel; the server would
        // refuse it (protocol.md §14.4).
        if (isLast) {
          this.at = events.length;
          const force = this.localRunner !== undefined && (await this.runLocalActivities(this.localRunner));
          const answer: WorkflowTaskResponse = { commands: this.commands.filter((c) => !this.lenient(c)).map((c) => c.command) };
          if (force) answer.force_create_new_workflow_task = true;
          this.answeredThrough = e.event_id;
          return answer;
        }
        this.unmatched.push(...this.commands);
        this.commands = [];
        i++; // WorkflowTaskCompleted
        continue;
      }
      if (COMMAND_EVENTS.has(t)) {
        if (t === "MarkerRecorded") await this.replayLocalActivity(e);
        this.match(e);
      } else if (RESOLUTION_EVENTS.has(t)) this.pending.push(e);
    }
    this.at = events.length;
    // An exported history (or a query's) that ends without a task to answer.
    this.expectAllMatched(undefined);
    if (this.forQuery && (this.pending.length > 0 || !this.started)) {
      // Events no task has delivered yet (a signal, an activity result):
      // the query sees them, as the next task will; its commands are discarded.
      this.replaying = true;
      this.nowMs = RealDate.parse(events[events.length - 1]!.event_time);
      this.lookaheadPatches = new Set();
      this.queryTail = true;
      await this.runActivation(this.pending, !this.started);
      if (this.hasTaskError) throw this.taskError;
    }
    return { commands: [] };
  }

  private async runActivation(events: HistoryEvent[], startWorkflow: boolean): Promise<void> {
    if (storage === undefined) current = this;
    if (active++ === 0) installDeterminism();
    try {
      // Temporal's job order (protocol.md §14.2): the start, signals and
      // updates first, in history order, and the workflow runs until it is
      // blocked; then the other jobs (results, a cancellation request).
      const first = events.filter((e) => FIRST_JOBS.has(e.event_type));
      const rest = events.filter((e) => !FIRST_JOBS.has(e.event_type));
      for (const batch of [first, rest]) {
        if (batch === first && first.length === 0) continue;
        this.inContext(() => {
          for (const e of batch) {
            if (e.event_type === "WorkflowExecutionStarted") {
              if (startWorkflow) this.start(e);
            } else this.apply(e);
          }
        });
        for (;;) {
          await drainTurn();
          if (!this.inContext(() => this.checkConditions())) break;
        }
      }
    } finally {
      if (--active === 0) restoreDeterminism();
      if (storage === undefined) current = undefined;
    }
  }

  /** Runs `fn` as workflow code, then the workflow until it is blocked. */
  private async runUntilBlocked(fn: () => void): Promise<void> {
    if (storage === undefined) current = this;
    if (active++ === 0) installDeterminism();
    try {
      this.inContext(fn);
      for (;;) {
        await drainTurn();
        if (!this.inContext(() => this.checkConditions())) break;
      }
    } finally {
      if (--active === 0) restoreDeterminism();
      if (storage === undefined) current = undefined;
    }
    if (this.hasTaskError) throw this.taskError;
    if (this.closing !== undefined) {
      this.commands.push(this.closing);
      this.closing = undefined;
    }
  }

  // ---- inline activities (protocol.md §5.9): the session goes on in this instance ----

  /**
   * The ScheduleActivityTask commands of the answer just made that may run
   * inline: of a type `registered` here, on the run's own task queue, not
   * opted out per call.
   */
  inlineCandidates(registered: (activityType: string) => boolean): ScheduleActivityTaskAttributes[] {
    const out: ScheduleActivityTaskAttributes[] = [];
    for (const c of this.commands) {
      if (c.command.command_type !== "ScheduleActivityTask" || c.activity === undefined || !c.activity.inline) continue;
      const a = c.command.attributes;
      if (registered(a.activity_type) && (a.task_queue === undefined || a.task_queue === this.request.task_queue)) out.push(a);
    }
    return out;
  }

  /**
   * A checkpoint applied the answer just made: `events` are what it
   * appended. The commands are matched to their events, as replay would,
   * so that results find their activities by event id.
   */
  checkpointed(events: HistoryEvent[]): void {
    this.unmatched.push(...this.commands);
    this.commands = [];
    for (const e of events) if (COMMAND_EVENTS.has(e.event_type)) this.match(e);
    this.unmatched = [];
    const last = events[events.length - 1];
    if (last !== undefined) this.info.historyLength = last.event_id;
  }

  /**
   * Feeds the results of inline attempts (by activity id) to the workflow,
   * which runs on, without replay, with `workflow.now()` at `nowMs`; returns
   * the next answer. Throws what a failed task would report.
   */
  async resume(results: { activityId: string; result: unknown }[], nowMs: number): Promise<WorkflowTaskResponse> {
    const release = await this.takeTurn();
    try {
      const open = [...this.activitiesByEvent.values()].filter((a) => !a.done);
      const at = new RealDate(nowMs).toISOString();
      const events: HistoryEvent[] = [];
      for (const r of results) {
        const act = open.find((a) => a.activityId === r.activityId);
        if (act === undefined) continue;
        events.push({ event_id: 0, event_time: at, event_type: "ActivityTaskCompleted", attributes: { scheduled_event_id: act.scheduledEventId, result: r.result } } as HistoryEvent);
      }
      this.replaying = false;
      this.nowMs = nowMs;
      this.lookaheadPatches = new Set();
      await this.runActivation(events, false);
      if (this.hasTaskError) throw this.taskError;
      if (this.closing !== undefined) {
        this.commands.push(this.closing);
        this.closing = undefined;
      }
      return { commands: this.commands.filter((c) => !this.lenient(c)).map((c) => c.command) };
    } finally {
      release();
    }
  }

  /** True when the workflow waits on a local activity, which a session does not run (the next pushed task does). */
  get waitsOnLocalActivity(): boolean {
    return !this.closed && [...this.localActivities.values()].some((la) => la.pending);
  }

  // ---- local activities (protocol.md §14.6) ----

  /**
   * While the workflow of the task being answered waits on local
   * activities, runs their attempts and feeds each outcome back, one at a
   * time in the order they finish. Returns true when the task's deadline
   * nears first: the answer then asks for a new task at once.
   */
  private async runLocalActivities(runner: LocalActivityRunner): Promise<boolean> {
    const started = new Map<LocalActivityState, Promise<[LocalActivityState, Record<string, unknown>]>>();
    for (;;) {
      const pending = this.closed ? [] : [...this.localActivities.values()].filter((la) => la.pending);
      for (const la of [...started.keys()]) {
        if (!pending.includes(la)) {
          started.delete(la);
          runner.cancel(la, this.request);
        }
      }
      if (pending.length === 0) return false;
      for (const la of pending) {
        if (!started.has(la)) started.set(la, runner.run(la, this.request).then((o) => [la, o]));
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const deadline = new Promise<undefined>((r) => {
        timer = setTimeout(() => r(undefined), Math.max(0, this.heartbeatAt - RealDate.now()));
      });
      const first = await Promise.race([...started.values(), deadline]);
      clearTimeout(timer);
      if (first === undefined) return true;
      const [la, outcome] = first;
      started.delete(la);
      if (la.pending && !la.done) await this.runUntilBlocked(() => this.resolveLocal(la, outcome));
    }
  }

  /**
   * A LocalActivity marker with no command before it left to match is the
   * outcome the waiting local activity got when the task ran: it resolves
   * it, and the workflow runs on as it did then.
   */
  private async replayLocalActivity(e: HistoryEvent): Promise<void> {
    const a = rec(e.attributes);
    if (a.marker_name !== LOCAL_ACTIVITY_MARKER_NAME) return;
    if (this.unmatched.some((c) => !this.lenient(c))) return;
    const d = rec(a.details);
    const la = this.localActivities.get(String(d.activity_id));
    if (la === undefined || !la.pending || d.activity_type !== la.activityType) return;
    const outcome: Record<string, unknown> = { ...d };
    if (a.failure !== undefined && a.failure !== null) outcome.failure = a.failure;
    await this.runUntilBlocked(() => this.resolveLocal(la, outcome));
    this.unmatched.push(...this.commands);
    this.commands = [];
  }

  /** Appends the local activity's marker, then resolves it: a result, a failure for good, or a back-off on a durable timer. */
  private resolveLocal(la: LocalActivityState, outcome: Record<string, unknown>): void {
    la.pending = false;
    const details: Record<string, unknown> = {
      activity_id: la.activityId,
      activity_type: la.activityType,
      attempt: typeof outcome.attempt === "number" ? outcome.attempt : la.attempt,
    };
    for (const k of ["original_schedule_time", "complete_time", "backoff", "retry_state"]) {
      if (outcome[k] !== undefined && outcome[k] !== null) details[k] = outcome[k];
    }
    const failure = outcome.failure !== undefined && outcome.failure !== null ? (outcome.failure as FailureJson) : undefined;
    if (failure === undefined) details.result = outcome.result ?? null;
    const attributes: Record<string, unknown> = { marker_name: LOCAL_ACTIVITY_MARKER_NAME, details };
    if (failure !== undefined) attributes.failure = failure;
    this.commands.push({ command: { command_type: "RecordMarker", attributes } as Command });
    if (typeof details.original_schedule_time === "string") la.originalScheduleTime = details.original_schedule_time;
    if (failure === undefined) {
      la.done = true;
      la.resolve(details.result);
      return;
    }
    if (typeof details.backoff === "string") {
      la.attempt = Number(details.attempt) + 1;
      la.backoffTimer = this.startInternalTimer(msToNumber(details.backoff), () => {
        la.backoffTimer = undefined;
        la.pending = true;
      });
      return;
    }
    la.done = true;
    la.reject(new ActivityFailure("Local activity failed", la.activityType, la.activityId, details.retry_state as RetryState, failureToError(failure)));
  }

  /** TRY_CANCEL: resolves as cancelled at once, recorded by a marker; the runner stops a running attempt. */
  private cancelLocal(la: LocalActivityState): void {
    if (la.done) return;
    const t = la.backoffTimer;
    if (t !== undefined && !t.fired && !t.cancelled) this.cancelTimer(t);
    la.backoffTimer = undefined;
    la.pending = false;
    la.done = true;
    const details = { activity_id: la.activityId, activity_type: la.activityType, attempt: la.attempt, retry_state: "CANCEL_REQUESTED" };
    const failure: FailureJson = { message: "Local activity cancelled", type: "CancelledError", kind: "CANCELED" };
    this.commands.push({ command: { command_type: "RecordMarker", attributes: { marker_name: LOCAL_ACTIVITY_MARKER_NAME, details, failure } } });
    la.reject(new ActivityFailure("Local activity failed", la.activityType, la.activityId, "CANCEL_REQUESTED", new CancelledFailure("Local activity cancelled")));
  }

  /** A durable timer for SDK bookkeeping (a local activity's back-off): `onFire` runs when its TimerFired is applied. */
  private startInternalTimer(ms: number, onFire: () => void): TimerState {
    this.timerSeq++;
    const timerId = String(this.timerSeq);
    const timer: TimerState = { timerId, resolve: onFire, reject: () => undefined, fired: false, cancelled: false };
    this.timers.set(timerId, timer);
    this.commands.push({ command: { command_type: "StartTimer", attributes: { timer_id: timerId, start_to_fire_timeout: formatDuration(ms) } }, timer });
    return timer;
  }

  private inContext<R>(fn: () => R): R {
    return storage !== undefined ? storage.run(this, fn) : fn();
  }

  private start(e: HistoryEvent): void {
    const args = argsFromPayload(rec(e.attributes).input);
    let p: Promise<unknown>;
    try {
      p = Promise.resolve(this.fn(...args));
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (result) => this.close({ command_type: "CompleteWorkflowExecution", attributes: { result: result === undefined ? null : result } }),
      (err: unknown) => {
        if (this.cancelRequested && isCancellation(err)) {
          this.close({ command_type: "CancelWorkflowExecution", attributes: {} });
        } else if (err instanceof ContinueAsNew) {
          this.close({ command_type: "ContinueAsNewWorkflowExecution", attributes: err.command });
        } else if (err instanceof BatonFailure) {
          this.close({ command_type: "FailWorkflowExecution", attributes: { failure: errorToFailure(err) } });
        } else {
          this.failTask(err);
        }
      },
    );
  }

  private failTask(err: unknown): void {
    if (!this.hasTaskError) {
      this.hasTaskError = true;
      this.taskError = err instanceof Error ? err : new TaskFailure(String(err));
    }
  }

  private close(command: Command): void {
    if (this.closed) return;
    this.closed = true;
    this.closing = { command };
  }

  private checkConditions(): boolean {
    let progressed = false;
    for (const c of [...this.conditions]) {
      let ok: boolean;
      try {
        ok = c.fn();
      } catch (err) {
        this.failTask(err);
        return false;
      }
      if (ok) {
        this.conditions = this.conditions.filter((x) => x !== c);
        c.d.resolve(true);
        progressed = true;
      }
    }
    return progressed;
  }

  private apply(e: HistoryEvent): void {
    const a = rec(e.attributes);
    if (e.event_type === "WorkflowExecutionCancelRequested") {
      this.requestCancel(typeof a.cause === "string" && a.cause !== "" ? a.cause : "Workflow cancelled");
      return;
    }
    if (e.event_type === "WorkflowExecutionUpdateAdmitted") {
      this.updateBuffer.push({ id: String(a.update_id ?? ""), name: String(a.update_name ?? ""), args: argsFromPayload(a.input) });
      this.deliverUpdates();
      return;
    }
    if (e.event_type === "WorkflowExecutionSignaled") {
      this.signalBuffer.push({ name: String(a.signal_name ?? ""), args: argsFromPayload(a.input) });
      this.deliverSignals();
      return;
    }
    if (e.event_type.includes("ChildWorkflowExecution") || e.event_type.includes("External")) {
      this.applyToOtherWorkflow(e);
      return;
    }
    if (e.event_type === "TimerFired") {
      const timer = this.timers.get(String(a.timer_id ?? ""));
      if (timer && !timer.fired) {
        timer.fired = true;
        if (!timer.cancelled) timer.resolve();
      }
      return;
    }
    const act = this.activitiesByEvent.get(Number(a.scheduled_event_id ?? 0));
    if (!act || act.done) return;
    act.done = true;
    switch (e.event_type) {
      case "ActivityTaskCompleted":
        act.resolve(a.result);
        return;
      case "ActivityTaskFailed":
        act.reject(
          new ActivityFailure("Activity task failed", act.activityType, act.activityId, a.retry_state as RetryState, failureToError(a.failure as FailureJson)),
        );
        return;
      case "ActivityTaskTimedOut": {
        const f = rec(a.failure);
        act.reject(
          new ActivityFailure(
            "Activity task timed out",
            act.activityType,
            act.activityId,
            a.retry_state as RetryState,
            new TimeoutFailure(String(f.message ?? "activity timed out"), typeof f.timeout_type === "string" ? (f.timeout_type as TimeoutType) : undefined, f.details),
          ),
        );
        return;
      }
      case "ActivityTaskCanceled":
        act.reject(
          new ActivityFailure("Activity task cancelled", act.activityType, act.activityId, "CANCEL_REQUESTED", new CancelledFailure("activity cancelled", argsFromPayload(a.details))),
        );
        return;
    }
  }

  // ---- matching of replayed commands ----

  private lenient(c: PendingCommand): boolean {
    if (c.command.command_type === "CancelTimer" && c.timer) return this.firedTimers.has(c.timer.timerId);
    if (c.command.command_type === "RequestCancelActivityTask" && c.activity) return this.closedActivities.has(c.activity.scheduledEventId);
    return false;
  }

  /** Notes what of `events` makes a cancel lenient. */
  private learn(events: HistoryEvent[]): void {
    for (const e of events) {
      const a = rec(e.attributes);
      if (e.event_type === "TimerFired" && typeof a.timer_id === "string") this.firedTimers.add(a.timer_id);
      else if (ACTIVITY_CLOSED.has(e.event_type) && typeof a.scheduled_event_id === "number") this.closedActivities.add(a.scheduled_event_id);
    }
  }

  private expectAllMatched(at: HistoryEvent | undefined): void {
    while (this.unmatched.length > 0) {
      const c = this.unmatched.shift()!;
      if (this.lenient(c)) continue;
      const where = at ? `event ${at.event_id} (${at.event_type})` : "the end of history";
      const actual = describeCommand(c.command);
      throw new NonDeterminismError(
        `workflow code produced ${actual} but history has ${where} instead [workflow ${this.request.workflow_id} of type ${this.request.workflow_type}]`,
        at?.event_id,
        at ? at.event_type : "end of history",
        actual,
      );
    }
  }

  private match(e: HistoryEvent): void {
    const a = rec(e.attributes);
    while (this.unmatched.length > 0) {
      const c = this.unmatched[0]!;
      if (this.matches(c, e)) {
        this.unmatched.shift();
        if (c.activity) {
          c.activity.scheduledEventId = e.event_id;
          this.activitiesByEvent.set(e.event_id, c.activity);
        }
        if (c.child) this.childrenByEvent.set(e.event_id, c.child);
        if (c.external) this.externalsByEvent.set(e.event_id, c.external);
        return;
      }
      if (this.lenient(c)) {
        this.unmatched.shift();
        continue;
      }
      break;
    }
    if (e.event_type === "MarkerRecorded" && a.marker_name === PATCH_MARKER_NAME && rec(a.details).deprecated === true) {
      return; // a deprecated patch whose call was removed
    }
    const actual = this.unmatched[0] ? describeCommand(this.unmatched[0].command) : "no command";
    throw new NonDeterminismError(
      `history has ${describeEvent(e)} at event ${e.event_id} but workflow code produced ${actual} [workflow ${this.request.workflow_id} of type ${this.request.workflow_type}]`,
      e.event_id,
      describeEvent(e),
      actual,
    );
  }

  private matches(c: PendingCommand, e: HistoryEvent): boolean {
    const a = rec(e.attributes);
    const cmd = c.command;
    const t = e.event_type;
    switch (cmd.command_type) {
      case "ScheduleActivityTask":
        return t === "ActivityTaskScheduled" && a.activity_id === cmd.attributes.activity_id && a.activity_type === cmd.attributes.activity_type;
      case "StartTimer":
        return t === "TimerStarted" && a.timer_id === cmd.attributes.timer_id;
      case "CancelTimer":
        return t === "TimerCanceled" && a.timer_id === cmd.attributes.timer_id;
      case "RequestCancelActivityTask":
        return t === "ActivityTaskCancelRequested" && c.activity !== undefined && a.scheduled_event_id === c.activity.scheduledEventId;
      case "CompleteWorkflowUpdate":
        return t === "WorkflowExecutionUpdateCompleted" && a.update_id === cmd.attributes.update_id;
      case "StartChildWorkflowExecution":
        return t === "StartChildWorkflowExecutionInitiated" && a.workflow_id === cmd.attributes.workflow_id && a.workflow_type === cmd.attributes.workflow_type;
      case "SignalExternalWorkflowExecution":
        return t === "SignalExternalWorkflowExecutionInitiated" && rec(a.workflow_execution).workflow_id === cmd.attributes.workflow_id && a.signal_name === cmd.attributes.signal_name;
      case "RequestCancelExternalWorkflowExecution":
        return t === "RequestCancelExternalWorkflowExecutionInitiated" && rec(a.workflow_execution).workflow_id === cmd.attributes.workflow_id;
      case "UpsertWorkflowSearchAttributes": {
        // The same attributes, by name (the event's values are typed).
        const names = (o: unknown): string => JSON.stringify(Object.keys(rec(o)).sort());
        return t === "UpsertWorkflowSearchAttributes" && names(a.search_attributes) === names(cmd.attributes.search_attributes);
      }
      case "RecordMarker": {
        const ca = cmd.attributes;
        if (t !== "MarkerRecorded" || a.marker_name !== ca.marker_name) return false;
        if (ca.marker_name === PATCH_MARKER_NAME) return rec(a.details).patch_id === rec(ca.details).patch_id;
        if (ca.marker_name === LOCAL_ACTIVITY_MARKER_NAME) {
          const d = rec(a.details);
          const cd = rec(ca.details);
          return d.activity_id === cd.activity_id && d.activity_type === cd.activity_type;
        }
        return true;
      }
      default: {
        const closing = CLOSING[cmd.command_type];
        return closing !== undefined && t === closing;
      }
    }
  }

  // ---- cancellation ----

  /**
   * A cancellation request cancels the root scope, as in Temporal: what the
   * workflow waits on in cancellable scopes is cancelled (timers get
   * CancelTimer, activities a cancellation per their cancellationType) and
   * rejects with a cancellation. A workflow that lets it propagate ends with
   * CancelWorkflowExecution.
   */
  private requestCancel(reason: string): void {
    if (this.cancelRequested) return;
    this.cancelRequested = true;
    this.rootScope.receive(new CancelledFailure(reason));
  }

  /** An activity's scope was cancelled: Temporal's ActivityCancellationType decides what happens. */
  private cancelActivity(act: ActivityState, err: CancelledFailure): void {
    if (act.done) return;
    const cancelled = (): ActivityFailure =>
      new ActivityFailure("Activity cancelled", act.activityType, act.activityId, "CANCEL_REQUESTED", new CancelledFailure(err.message));
    const idx = this.commands.findIndex((c) => c.activity === act && c.command.command_type === "ScheduleActivityTask");
    if (idx >= 0) {
      // Not sent yet: it is never scheduled.
      this.commands.splice(idx, 1);
    } else if (act.cancellationType !== ActivityCancellationType.ABANDON) {
      this.commands.push({ command: { command_type: "RequestCancelActivityTask", attributes: { activity_id: act.activityId } }, activity: act });
      // WAIT_CANCELLATION_COMPLETED: the promise settles with the activity's outcome (ActivityTaskCanceled, or a result).
      if (act.cancellationType === ActivityCancellationType.WAIT_CANCELLATION_COMPLETED) return;
    }
    act.done = true;
    act.reject(cancelled());
  }

  // ---- signals ----

  /** Delivers buffered signals that have a handler, in arrival order (Temporal buffers the rest until `setHandler`). */
  private deliverSignals(): void {
    const waiting: { name: string; args: unknown[] }[] = [];
    for (const sig of this.signalBuffer) {
      const fn = this.signalHandlers.get(sig.name);
      if (fn === undefined) {
        waiting.push(sig);
        continue;
      }
      try {
        const r = fn(...sig.args);
        if (r instanceof Promise) r.catch((err: unknown) => this.failTask(err));
      } catch (err) {
        this.failTask(err);
      }
    }
    this.signalBuffer = waiting;
  }

  setSignalHandler(name: string, fn: ((...args: any[]) => unknown) | undefined): void {
    if (fn === undefined) this.signalHandlers.delete(name);
    else {
      this.signalHandlers.set(name, fn);
      this.deliverSignals();
    }
  }

  // ---- child workflows and other workflows (protocol.md §5.6) ----

  private applyToOtherWorkflow(e: HistoryEvent): void {
    const a = rec(e.attributes);
    const initiated = Number(a.initiated_event_id ?? 0);
    const external = this.externalsByEvent.get(initiated);
    if (external !== undefined) {
      if (external.done) return;
      external.done = true;
      if (e.event_type === "ExternalWorkflowExecutionSignaled" || e.event_type === "ExternalWorkflowExecutionCancelRequested") external.d.resolve();
      else {
        const what = e.event_type === "SignalExternalWorkflowExecutionFailed" ? "signal" : "cancel";
        const wid = String(rec(a.workflow_execution).workflow_id ?? "");
        external.d.reject(ApplicationFailure.create({ message: `Unable to ${what} external workflow ${wid} because it was not found`, type: String(a.cause ?? "EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND"), nonRetryable: true }));
      }
      return;
    }
    const child = this.childrenByEvent.get(initiated);
    if (child === undefined || child.done) return;
    const execution = { workflowId: child.workflowId, ...(child.runId !== undefined ? { runId: child.runId } : {}) };
    const fail = (cause: Error, retryState?: RetryState): void => {
      child.done = true;
      child.result.reject(new ChildWorkflowFailure(this.info.namespace, execution, child.workflowType, retryState, cause));
    };
    switch (e.event_type) {
      case "ChildWorkflowExecutionStarted":
        child.runId = String(rec(a.workflow_execution).run_id ?? "");
        child.started.resolve(child.runId);
        return;
      case "StartChildWorkflowExecutionFailed": {
        const err = new WorkflowExecutionAlreadyStartedError("Workflow execution already started", child.workflowId, child.workflowType);
        child.done = true;
        child.started.reject(err);
        child.result.reject(err);
        return;
      }
      case "ChildWorkflowExecutionCompleted":
        child.done = true;
        child.result.resolve(a.result);
        return;
      case "ChildWorkflowExecutionFailed":
        fail(failureToError(a.failure as FailureJson), a.retry_state as RetryState);
        return;
      case "ChildWorkflowExecutionCanceled":
        fail(new CancelledFailure("Child Workflow execution cancelled", argsFromPayload(a.details)));
        return;
      case "ChildWorkflowExecutionTimedOut":
        fail(new TimeoutFailure("Child Workflow execution timed out", "START_TO_CLOSE"), a.retry_state as RetryState);
        return;
      case "ChildWorkflowExecutionTerminated":
        fail(new TerminatedFailure("Child Workflow execution terminated"));
        return;
    }
  }

  /**
   * Starts a child workflow in the current cancellation scope. `started`
   * resolves with the child's run id once it started (rejects with
   * WorkflowExecutionAlreadyStartedError); `result` with its outcome.
   * Cancelling the scope cancels the child per its cancellationType.
   */
  startChild(attributes: StartChildWorkflowExecutionAttributes, cancellationType: ChildWorkflowCancellationType): ChildState {
    this.childSeq++;
    const child: ChildState = {
      workflowId: attributes.workflow_id,
      workflowType: attributes.workflow_type,
      cancellationType,
      started: deferred<string>(),
      result: deferred<unknown>(),
      done: false,
    };
    const scope = CancellationScope.current();
    if (scope.consideredCancelled) {
      child.done = true;
      scope.onCancel((err) => {
        child.started.reject(err);
        child.result.reject(err);
      });
      return child;
    }
    this.commands.push({ command: { command_type: "StartChildWorkflowExecution", attributes }, child });
    scope.onCancel((err) => this.cancelChild(child, err));
    return child;
  }

  /** The deterministic id of the n-th child started without one. */
  nextChildId(): string {
    return `${this.info.workflowId}-child-${this.childSeq + 1}`;
  }

  private cancelChild(child: ChildState, err: CancelledFailure): void {
    if (child.done) return;
    const cancelled = (): ChildWorkflowFailure =>
      new ChildWorkflowFailure(this.info.namespace, { workflowId: child.workflowId }, child.workflowType, "CANCEL_REQUESTED", new CancelledFailure(err.message));
    const idx = this.commands.findIndex((c) => c.child === child);
    if (idx >= 0) {
      // Not sent yet: it is never started.
      this.commands.splice(idx, 1);
      child.done = true;
      child.started.reject(err);
      child.result.reject(cancelled());
      return;
    }
    if (child.cancellationType !== ChildWorkflowCancellationType.ABANDON) {
      // The child's workflow id, limited to this run's children, and no run
      // id: a child that continued as new is still reached (protocol.md §14.3).
      const request = this.cancelExternal(child.workflowId, undefined, true);
      if (child.cancellationType === ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED) return;
      if (child.cancellationType === ChildWorkflowCancellationType.WAIT_CANCELLATION_REQUESTED) {
        request.then(
          () => {
            if (child.done) return;
            child.done = true;
            child.result.reject(cancelled());
          },
          () => undefined,
        );
        return;
      }
    }
    child.done = true;
    child.result.reject(cancelled());
  }

  /** Signals another workflow (a child with `childOnly`); resolves once the signal was recorded in it. */
  signalExternal(workflowId: string, runId: string | undefined, signalName: string, args: unknown[], childOnly: boolean): Promise<void> {
    const external: ExternalState = { d: deferred<void>(), done: false };
    const attributes: SignalExternalWorkflowExecutionAttributes = { workflow_id: workflowId, signal_name: signalName, input: args };
    if (runId !== undefined) attributes.run_id = runId;
    if (childOnly) attributes.child_workflow_only = true;
    this.commands.push({ command: { command_type: "SignalExternalWorkflowExecution", attributes }, external });
    return external.d.promise;
  }

  /** Asks another workflow (a child with `childOnly`) to cancel; resolves once the request was recorded in it. */
  cancelExternal(workflowId: string, runId: string | undefined, childOnly: boolean): Promise<void> {
    const external: ExternalState = { d: deferred<void>(), done: false };
    const attributes: RequestCancelExternalWorkflowExecutionAttributes = { workflow_id: workflowId };
    if (runId !== undefined) attributes.run_id = runId;
    if (childOnly) attributes.child_workflow_only = true;
    this.commands.push({ command: { command_type: "RequestCancelExternalWorkflowExecution", attributes }, external });
    return external.d.promise;
  }

  // ---- updates (protocol.md §5.6) ----

  /**
   * Runs the handlers of admitted updates that have one, in arrival order
   * (the rest wait for `setHandler`, as in Temporal). The handler's return
   * value completes the update; an ApplicationFailure (any BatonFailure)
   * fails it; any other error fails the workflow task. Validators never
   * run here: the server ran them before admitting the update.
   */
  private deliverUpdates(): void {
    const waiting: { id: string; name: string; args: unknown[] }[] = [];
    for (const u of this.updateBuffer) {
      const h = this.updateHandlers.get(u.name);
      if (h === undefined) {
        waiting.push(u);
        continue;
      }
      let p: Promise<unknown>;
      try {
        p = Promise.resolve(h.handler(...u.args));
      } catch (err) {
        p = Promise.reject(err);
      }
      p.then(
        (result) => this.commands.push({ command: { command_type: "CompleteWorkflowUpdate", attributes: { update_id: u.id, result: result === undefined ? null : result } } }),
        (err: unknown) => {
          if (err instanceof BatonFailure) {
            this.commands.push({ command: { command_type: "CompleteWorkflowUpdate", attributes: { update_id: u.id, failure: errorToFailure(err) } } });
          } else this.failTask(err);
        },
      );
    }
    this.updateBuffer = waiting;
  }

  setUpdateHandler(name: string, h: UpdateHandler | undefined): void {
    if (h === undefined) this.updateHandlers.delete(name);
    else {
      this.updateHandlers.set(name, h);
      this.deliverUpdates();
    }
  }

  /**
   * Answers an `update_validation` push (protocol.md §5.6): replays the
   * persisted history, then runs the update's validator (never its
   * handler), which must be synchronous and must not issue commands.
   */
  async validateUpdate(name: string, args: unknown[]): Promise<UpdateValidationResponse> {
    const release = await this.takeTurn();
    try {
      await this.replay();
      const h = this.updateHandlers.get(name);
      if (h === undefined) {
        const known = [...this.updateHandlers.keys()].sort();
        return { failure: { message: `Workflow did not register a handler for update ${name}. Registered updates: [${known.join(" ")}]`, type: "UpdateNotRegisteredError" } };
      }
      if (h.validator === undefined) return { accepted: true };
      const validator = h.validator;
      const before = this.commands.length;
      const out = this.runSync(() => validator(...args));
      if (this.commands.length !== before) {
        return { failure: { message: `the validator of update ${name} issued a command: validators must not change the workflow`, type: "TypeError" } };
      }
      if (out !== null && typeof out === "object" && typeof (out as { then?: unknown }).then === "function") {
        (out as Promise<unknown>).then(undefined, () => undefined);
        return { failure: { message: `the validator of update ${name} returned a promise: validators must be synchronous`, type: "TypeError" } };
      }
      return { accepted: true };
    } catch (err) {
      return { failure: errorToFailure(err, false) };
    } finally {
      release();
    }
  }

  setQueryHandler(name: string, fn: ((...args: any[]) => unknown) | undefined): void {
    if (fn === undefined) this.queryHandlers.delete(name);
    else this.queryHandlers.set(name, fn);
  }

  // ---- the workflow APIs ----

  /**
   * Schedules an activity in the current cancellation scope. In a scope
   * that is already cancelled it rejects at once and nothing is scheduled.
   */
  scheduleActivity(activityType: string, args: unknown[], options: ActivityOptions): Promise<unknown> {
    if (options.startToCloseTimeout === undefined && options.scheduleToCloseTimeout === undefined) {
      throw new TypeError("activity options need startToCloseTimeout or scheduleToCloseTimeout");
    }
    this.activitySeq++;
    const d = deferred<unknown>();
    const scope = CancellationScope.current();
    if (scope.consideredCancelled) {
      scope.onCancel(d.reject);
      return d.promise;
    }
    const activityId = options.activityId ?? String(this.activitySeq);
    const attributes: ScheduleActivityTaskAttributes = { activity_id: activityId, activity_type: activityType };
    if (options.taskQueue !== undefined) attributes.task_queue = options.taskQueue;
    attributes.input = args;
    if (options.scheduleToCloseTimeout !== undefined) attributes.schedule_to_close_timeout = formatDuration(options.scheduleToCloseTimeout);
    if (options.scheduleToStartTimeout !== undefined) attributes.schedule_to_start_timeout = formatDuration(options.scheduleToStartTimeout);
    if (options.startToCloseTimeout !== undefined) attributes.start_to_close_timeout = formatDuration(options.startToCloseTimeout);
    if (options.heartbeatTimeout !== undefined) attributes.heartbeat_timeout = formatDuration(options.heartbeatTimeout);
    if (options.retry !== undefined) attributes.retry_policy = retryPolicyToWire(options.retry);
    const act: ActivityState = {
      activityId,
      activityType,
      cancellationType: options.cancellationType ?? ActivityCancellationType.TRY_CANCEL,
      scheduledEventId: 0,
      inline: options.inline !== false,
      resolve: d.resolve,
      reject: d.reject,
      done: false,
    };
    this.commands.push({ command: { command_type: "ScheduleActivityTask", attributes }, activity: act });
    scope.onCancel((err) => this.cancelActivity(act, err));
    return d.promise;
  }

  /** Starts a local activity in the current cancellation scope (protocol.md §14.6). */
  scheduleLocalActivity(activityType: string, args: unknown[], options: LocalActivityOptions): Promise<unknown> {
    if (options.startToCloseTimeout === undefined && options.scheduleToCloseTimeout === undefined) {
      throw new TypeError("local activity options need startToCloseTimeout or scheduleToCloseTimeout");
    }
    this.activitySeq++;
    const d = deferred<unknown>();
    const scope = CancellationScope.current();
    if (scope.consideredCancelled) {
      scope.onCancel(d.reject);
      return d.promise;
    }
    const activityId = options.activityId ?? String(this.activitySeq);
    if (this.localActivities.has(activityId)) throw new TypeError(`activity id ${JSON.stringify(activityId)} is already in use in this workflow`);
    const la: LocalActivityState = { activityId, activityType, args, options, attempt: 1, pending: true, done: false, resolve: d.resolve, reject: d.reject };
    this.localActivities.set(activityId, la);
    scope.onCancel(() => this.cancelLocal(la));
    return d.promise;
  }

  /**
   * A durable timer in the current cancellation scope: cancelling the scope
   * cancels the timer (CancelTimer, or nothing if it was started in this
   * activation) and rejects the promise.
   */
  startTimer(duration: Duration): Promise<void> {
    const ms = msToNumber(duration);
    this.timerSeq++;
    const d = deferred<void>();
    const scope = CancellationScope.current();
    if (scope.consideredCancelled) {
      scope.onCancel(d.reject);
      return d.promise;
    }
    const timerId = String(this.timerSeq);
    const timer: TimerState = { timerId, resolve: () => d.resolve(), reject: d.reject, fired: false, cancelled: false };
    this.timers.set(timerId, timer);
    this.commands.push({ command: { command_type: "StartTimer", attributes: { timer_id: timerId, start_to_fire_timeout: formatDuration(ms) } }, timer });
    scope.onCancel((err) => {
      if (timer.fired || timer.cancelled) return;
      this.cancelTimer(timer);
      timer.reject(err);
    });
    return d.promise;
  }

  private cancelTimer(timer: TimerState): void {
    timer.cancelled = true;
    // A timer started in this activation is simply dropped.
    const idx = this.commands.findIndex((c) => c.timer === timer && c.command.command_type === "StartTimer");
    if (idx >= 0) this.commands.splice(idx, 1);
    else this.commands.push({ command: { command_type: "CancelTimer", attributes: { timer_id: timer.timerId } }, timer });
  }

  /** Resolves when `fn()` is true (checked whenever the workflow is idle); rejects if the current scope is cancelled first. */
  condition(fn: () => boolean): Promise<boolean> {
    const d = deferred<boolean>();
    const scope = CancellationScope.current();
    if (scope.consideredCancelled) {
      scope.onCancel(d.reject);
      return d.promise;
    }
    const c = { fn, d };
    this.conditions.push(c);
    scope.onCancel((err) => {
      if (!this.conditions.includes(c)) return;
      this.conditions = this.conditions.filter((x) => x !== c);
      d.reject(err);
    });
    return d.promise;
  }

  upsertSearchAttributes(updates: SearchAttributeUpdatePair[]): void {
    if (updates.length === 0) throw new TypeError("upsertSearchAttributes needs at least one update");
    const attributes: Record<string, unknown> = {};
    for (const u of updates) attributes[u.key.name] = searchAttributeToWire(u.key.type, u.value);
    this.commands.push({ command: { command_type: "UpsertWorkflowSearchAttributes", attributes: { search_attributes: attributes } } });
    this.info.typedSearchAttributes = this.info.typedSearchAttributes.updateCopy(updates);
  }

  patch(patchId: string, deprecated: boolean): boolean {
    const known = this.patches.get(patchId);
    if (known !== undefined) return known;
    const present = !this.replaying || this.queryTail || this.lookaheadPatches.has(patchId);
    if (present) {
      this.commands.push({
        command: { command_type: "RecordMarker", attributes: { marker_name: PATCH_MARKER_NAME, details: { patch_id: patchId, deprecated } } },
      });
    }
    const result = present || deprecated;
    this.patches.set(patchId, result);
    return result;
  }
}

function patchMarkers(events: HistoryEvent[], start: number): Set<string> {
  const out = new Set<string>();
  for (let i = start; i < events.length; i++) {
    const e = events[i]!;
    if (e.event_type === "WorkflowTaskStarted") break;
    const a = rec(e.attributes);
    if (e.event_type === "MarkerRecorded" && a.marker_name === PATCH_MARKER_NAME) {
      const pid = rec(a.details).patch_id;
      if (typeof pid === "string") out.add(pid);
    }
  }
  return out;
}

/** The task's timeout in ms: its WorkflowTaskScheduled's `start_to_close_timeout` (default 10 s). */
function taskTimeoutMs(request: WorkflowTaskRequest): number {
  for (let i = request.history.length - 1; i >= 0; i--) {
    const e = request.history[i]!;
    if (e.event_type !== "WorkflowTaskScheduled") continue;
    const t = rec(e.attributes).start_to_close_timeout;
    return typeof t === "string" ? msToNumber(t) : 10_000;
  }
  return 10_000;
}

/** Answers one workflow task push; `localRunner` runs its local activities. */
export async function handleWorkflowTask(
  fn: WorkflowFunction | undefined,
  request: WorkflowTaskRequest,
  localRunner?: LocalActivityRunner,
): Promise<WorkflowTaskResponse> {
  if (fn === undefined) {
    return {
      failure: {
        cause: "WORKFLOW_WORKER_UNHANDLED_FAILURE",
        failure: { message: `workflow type ${JSON.stringify(request.workflow_type)} is not registered with this handler`, type: "NotFoundError" },
      },
    };
  }
  return new WorkflowInstance(fn, request, false, localRunner).activate();
}

/** A workflow task for replaying the persisted history of a query or an update validation push. */
function replayTask(request: QueryRequest | UpdateValidationRequest): WorkflowTaskRequest {
  return {
    type: "workflow_task",
    namespace: request.namespace,
    task_token: "",
    workflow_id: request.workflow_id,
    run_id: request.run_id,
    workflow_type: request.workflow_type,
    task_queue: request.task_queue,
    attempt: 1,
    history: request.history,
    history_length: request.history_length ?? request.history.length,
  };
}

function notRegistered(workflowType: string): { failure: FailureJson } {
  return { failure: { message: `workflow type ${JSON.stringify(workflowType)} is not registered with this handler`, type: "NotFoundError" } };
}

/** Answers one query push (protocol.md §5.5). */
export async function handleQuery(fn: WorkflowFunction | undefined, request: QueryRequest): Promise<QueryResponse> {
  if (fn === undefined) return notRegistered(request.workflow_type);
  return new WorkflowInstance(fn, replayTask(request), true).answerQuery(request.query_name, argsFromPayload(request.query_args));
}

/** Answers one update validation push (protocol.md §5.6). */
export async function handleUpdateValidation(fn: WorkflowFunction | undefined, request: UpdateValidationRequest): Promise<UpdateValidationResponse> {
  if (fn === undefined) return notRegistered(request.workflow_type);
  return new WorkflowInstance(fn, replayTask(request), true).validateUpdate(request.update_name, argsFromPayload(request.update_args));
}

export { ApplicationFailure };
