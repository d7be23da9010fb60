/**
 * Types and errors shared by workflows, activities and the client
 * (`@baton/sdk/common`, mirroring `@temporalio/common`).
 */
import type * as wire from "./generated/openapi.js";

/** A duration as Temporal's TypeScript SDK accepts it: milliseconds or a string like `'30s'`, `'7 days'`, `'1h 30m'`. */
export type Duration = number | string;

const UNITS: Record<string, number> = {
  ms: 1, msec: 1, msecs: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, secs: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, mins: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hr: 3_600_000, hrs: 3_600_000, hour: 3_600_000, hours: 3_600_000,
  d: 86_400_000, day: 86_400_000, days: 86_400_000,
  w: 604_800_000, week: 604_800_000, weeks: 604_800_000,
  y: 31_557_600_000, yr: 31_557_600_000, yrs: 31_557_600_000, year: 31_557_600_000, years: 31_557_600_000,
};

/** Milliseconds in a {@link Duration}; a bare number (or unit-less string) is milliseconds, as in Temporal. */
export function msToNumber(d: Duration): number {
  if (typeof d === "number") {
    if (!Number.isFinite(d) || d < 0) throw new TypeError(`invalid duration: ${d}`);
    return d;
  }
  const s = d.trim().toLowerCase();
  const re = /(\d*\.?\d+)\s*([a-z]*)\s*/gy;
  let total = 0;
  let matched = false;
  let m: RegExpExecArray | null;
  while (re.lastIndex < s.length && (m = re.exec(s)) !== null) {
    const unit = m[2] ?? "";
    const factor = unit === "" ? 1 : UNITS[unit];
    if (factor === undefined) throw new TypeError(`invalid duration: ${JSON.stringify(d)}`);
    total += Number(m[1]) * factor;
    matched = true;
  }
  if (!matched || re.lastIndex !== s.length) throw new TypeError(`invalid duration: ${JSON.stringify(d)}`);
  return total;
}

/** A duration in the server's wire form (`"10s"`, `"1.5s"`), rounded up to the millisecond. */
export function formatDuration(d: Duration): string {
  const ms = Math.ceil(Math.round(msToNumber(d) * 1e6) / 1e6);
  return `${ms / 1000}s`;
}

/** Parses the server's wire durations (`"3600s"`, `"1.5s"`) and humantime forms. */
export function parseWireDuration(s: string): number {
  return msToNumber(s);
}

/** Temporal's retry policy. */
export interface RetryPolicy {
  initialInterval?: Duration;
  backoffCoefficient?: number;
  maximumInterval?: Duration;
  maximumAttempts?: number;
  nonRetryableErrorTypes?: string[];
}

export function retryPolicyToWire(p: RetryPolicy): wire.RetryPolicySpec {
  const out: wire.RetryPolicySpec = {};
  if (p.initialInterval !== undefined) out.initial_interval = formatDuration(p.initialInterval);
  if (p.backoffCoefficient !== undefined) out.backoff_coefficient = p.backoffCoefficient;
  if (p.maximumInterval !== undefined) out.maximum_interval = formatDuration(p.maximumInterval);
  if (p.maximumAttempts !== undefined) out.maximum_attempts = p.maximumAttempts;
  if (p.nonRetryableErrorTypes !== undefined) out.non_retryable_error_types = p.nonRetryableErrorTypes;
  return out;
}

/** A failure on the wire (protocol.md §5.3): the spec's `Failure`. */
export type FailureJson = wire.Failure;

/** Which timeout fired (Temporal's `TimeoutType`). */
export type TimeoutType = wire.TimeoutType;

/** Why retrying stopped (Temporal's `RetryState`); `IN_PROGRESS` and the others the spec lists. */
export type RetryState = wire.RetryState | "RETRY_STATE_UNSPECIFIED" | "IN_PROGRESS" | "INTERNAL_SERVER_ERROR";

/** Base of the failures that cross the wire (Temporal's `TemporalFailure`). */
export class BatonFailure extends Error {
  override readonly cause: Error | undefined;
  constructor(message: string, cause?: Error) {
    super(message);
    this.cause = cause;
  }
}
export { BatonFailure as TemporalFailure };

/**
 * A failure raised on purpose by workflow or activity code. Thrown from a
 * workflow it fails the workflow; from an activity it fails the attempt
 * (not retried if `nonRetryable`, or if its type is listed in the retry
 * policy's `nonRetryableErrorTypes`).
 */
export class ApplicationFailure extends BatonFailure {
  override readonly name = "ApplicationFailure";
  constructor(
    message?: string,
    public readonly type?: string,
    public readonly nonRetryable: boolean = false,
    public readonly details?: unknown[],
    cause?: Error,
  ) {
    super(message ?? "Application failure", cause);
  }

  static create(options: {
    message?: string;
    type?: string;
    nonRetryable?: boolean;
    details?: unknown[];
    cause?: Error;
  }): ApplicationFailure {
    return new ApplicationFailure(
      options.message,
      options.type,
      options.nonRetryable ?? false,
      options.details,
      options.cause,
    );
  }

  static fromError(error: unknown): ApplicationFailure {
    if (error instanceof ApplicationFailure) return error;
    const e = error instanceof Error ? error : new Error(String(error));
    return new ApplicationFailure(e.message, e.name, false, undefined, e);
  }

  static retryable(message?: string, type?: string, ...details: unknown[]): ApplicationFailure {
    return new ApplicationFailure(message, type ?? "Error", false, details);
  }

  static nonRetryable(message?: string, type?: string, ...details: unknown[]): ApplicationFailure {
    return new ApplicationFailure(message, type ?? "Error", true, details);
  }
}

/** An activity failed (all its attempts), timed out or was cancelled; `cause` says why. */
export class ActivityFailure extends BatonFailure {
  override readonly name = "ActivityFailure";
  constructor(
    message: string,
    public readonly activityType: string,
    public readonly activityId: string,
    public readonly retryState: RetryState | undefined,
    cause?: Error,
  ) {
    super(message, cause);
  }
}

/** A child workflow failed, timed out, was cancelled or terminated; `cause` says how. */
export class ChildWorkflowFailure extends BatonFailure {
  override readonly name = "ChildWorkflowFailure";
  constructor(
    public readonly namespace: string | undefined,
    public readonly execution: { workflowId: string; runId?: string },
    public readonly workflowType: string,
    public readonly retryState: RetryState | undefined,
    cause?: Error,
  ) {
    super("Child Workflow execution failed", cause);
  }
}

/** A workflow id already has a run that the id policies refuse to start next to (a child's start, or the client's). */
export class WorkflowExecutionAlreadyStartedError extends BatonFailure {
  override readonly name = "WorkflowExecutionAlreadyStartedError";
  constructor(
    message: string,
    public readonly workflowId: string,
    public readonly workflowType: string,
  ) {
    super(message);
  }
}

/** Temporal's `ParentClosePolicy`: what happens to an open child when its parent closes. */
export const ParentClosePolicy = { TERMINATE: "TERMINATE", ABANDON: "ABANDON", REQUEST_CANCEL: "REQUEST_CANCEL" } as const;
export type ParentClosePolicy = wire.ParentClosePolicy;

/** Temporal's `ChildWorkflowCancellationType`: what cancelling a child's scope waits for. */
export enum ChildWorkflowCancellationType {
  ABANDON = 0,
  TRY_CANCEL = 1,
  WAIT_CANCELLATION_COMPLETED = 2,
  WAIT_CANCELLATION_REQUESTED = 3,
}

/** A timeout (of an activity attempt, an activity, or a run). */
export class TimeoutFailure extends BatonFailure {
  override readonly name = "TimeoutFailure";
  constructor(
    message: string,
    public readonly timeoutType: TimeoutType | undefined,
    public readonly lastHeartbeatDetails?: unknown,
  ) {
    super(message);
  }
}

/** Cancellation of an activity or a workflow. */
export class CancelledFailure extends BatonFailure {
  override readonly name = "CancelledFailure";
  constructor(
    message: string,
    public readonly details: unknown[] = [],
  ) {
    super(message);
  }
}

/** A run was terminated. */
export class TerminatedFailure extends BatonFailure {
  override readonly name = "TerminatedFailure";
}

/** The failure of a server-side operation (e.g. a payload too large). */
export class ServerFailure extends BatonFailure {
  override readonly name = "ServerFailure";
  constructor(
    message: string,
    public readonly nonRetryable: boolean,
  ) {
    super(message);
  }
}

/** True if `err` is (or was caused by) a cancellation. */
export function isCancellation(err: unknown): boolean {
  if (err instanceof CancelledFailure) return true;
  if (err instanceof ActivityFailure || err instanceof ChildWorkflowFailure) return err.cause instanceof CancelledFailure;
  return false;
}

/** Replay diverged from the history (Temporal's `DeterminismViolationError`). */
export class NonDeterminismError extends Error {
  override readonly name = "NonDeterminismError";
  constructor(
    message: string,
    public readonly eventId: number | undefined,
    public readonly expected: string,
    public readonly actual: string,
  ) {
    super(message);
  }
}
export { NonDeterminismError as DeterminismViolationError };

/**
 * Thrown by `continueAsNew`: when it propagates out of the workflow
 * function, the run closes CONTINUED_AS_NEW and the next run of its chain
 * starts with `command`'s input and options (protocol.md §5.2).
 */
export class ContinueAsNew extends Error {
  override readonly name = "ContinueAsNew";
  constructor(public readonly command: wire.ContinueAsNewWorkflowExecutionAttributes) {
    super("Workflow continued as new");
  }
}

function detailsToWire(details: unknown[] | undefined): unknown[] | undefined {
  return details !== undefined && details.length > 0 ? details : undefined;
}

const WIRE_RETRY_STATES: ReadonlySet<string> = new Set<wire.RetryState>([
  "IN_PROGRESS",
  "RETRY_POLICY_NOT_SET",
  "MAXIMUM_ATTEMPTS_REACHED",
  "NON_RETRYABLE_FAILURE",
  "TIMEOUT",
  "CANCEL_REQUESTED",
]);

function wireRetryState(r: RetryState | undefined): wire.RetryState | undefined {
  return r !== undefined && WIRE_RETRY_STATES.has(r) ? (r as wire.RetryState) : undefined;
}

/**
 * An error as a wire failure of its kind (protocol.md §5.3.1):
 * ApplicationFailure keeps its type, ActivityFailure and ChildWorkflowFailure
 * carry their info, other errors are application failures named by `name`.
 */
export function errorToFailure(err: unknown, includeStack = true): FailureJson {
  if (!(err instanceof Error)) return { message: String(err), type: "Error", kind: "APPLICATION" };
  const f: FailureJson = { message: err.message };
  if (err instanceof ApplicationFailure) {
    f.kind = "APPLICATION";
    f.type = err.type ?? "Error";
    if (err.nonRetryable) f.non_retryable = true;
    const d = detailsToWire(err.details);
    if (d !== undefined) f.details = d;
  } else if (err instanceof ActivityFailure) {
    f.kind = "ACTIVITY";
    f.type = "ActivityError";
    const info: wire.ActivityFailureInfo = { activity_type: err.activityType, activity_id: err.activityId };
    const rs = wireRetryState(err.retryState);
    if (rs !== undefined) info.retry_state = rs;
    f.activity_failure_info = info;
  } else if (err instanceof ChildWorkflowFailure) {
    f.kind = "CHILD_WORKFLOW_EXECUTION";
    f.type = "ChildWorkflowError";
    const info: wire.ChildWorkflowExecutionFailureInfo = { workflow_id: err.execution.workflowId, workflow_type: err.workflowType };
    if (err.namespace) info.namespace = err.namespace;
    if (err.execution.runId) info.run_id = err.execution.runId;
    const rs = wireRetryState(err.retryState);
    if (rs !== undefined) info.retry_state = rs;
    f.child_workflow_execution_failure_info = info;
  } else if (err instanceof TimeoutFailure) {
    f.kind = "TIMEOUT";
    f.type = "TimeoutError";
    if (err.timeoutType !== undefined) f.timeout_type = err.timeoutType;
  } else if (err instanceof CancelledFailure) {
    f.kind = "CANCELED";
    f.type = "CancelledError";
    const d = detailsToWire(err.details);
    if (d !== undefined) f.details = d;
  } else if (err instanceof TerminatedFailure) {
    f.kind = "TERMINATED";
    f.type = "TerminatedError";
  } else if (err instanceof ServerFailure) {
    f.kind = "SERVER";
    f.type = "ServerError";
    if (err.nonRetryable) f.non_retryable = true;
  } else {
    f.kind = "APPLICATION";
    f.type = err.name;
  }
  if (includeStack && err.stack) f.stack_trace = err.stack;
  if (err.cause instanceof Error) f.cause = errorToFailure(err.cause, includeStack);
  return f;
}

function asDetails(d: unknown): unknown[] {
  if (d === undefined || d === null) return [];
  return Array.isArray(d) ? d : [d];
}

const LEGACY_KINDS: Record<string, wire.FailureKind> = {
  TimeoutError: "TIMEOUT",
  CancelledError: "CANCELED",
  TerminatedError: "TERMINATED",
  ServerError: "SERVER",
  ActivityError: "ACTIVITY",
  ChildWorkflowError: "CHILD_WORKFLOW_EXECUTION",
};

/** The kind of a failure recorded before kinds existed: from the type names the SDKs and the server used, else APPLICATION. */
function legacyKind(f: FailureJson): wire.FailureKind {
  if (f.timeout_type !== undefined) return "TIMEOUT";
  const kind = LEGACY_KINDS[f.type ?? ""] ?? "APPLICATION";
  const infoInDetails = typeof f.details === "object" && f.details !== null && !Array.isArray(f.details);
  return (kind === "ACTIVITY" || kind === "CHILD_WORKFLOW_EXECUTION") && !infoInDetails ? "APPLICATION" : kind;
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/** A wire failure as an error of its kind (the inverse of {@link errorToFailure}); no `kind` means an old failure, read by its type. */
export function failureToError(f: FailureJson | undefined | null): Error {
  if (!f || typeof f !== "object") return new ApplicationFailure("unknown failure");
  const cause = f.cause ? failureToError(f.cause) : undefined;
  const legacy = (f.details ?? {}) as Record<string, unknown>;
  let err: Error;
  switch (f.kind ?? legacyKind(f)) {
    case "TIMEOUT":
      err = new TimeoutFailure(f.message, f.timeout_type, f.details);
      break;
    case "CANCELED":
      err = new CancelledFailure(f.message, asDetails(f.details));
      break;
    case "TERMINATED":
      err = new TerminatedFailure(f.message, cause);
      break;
    case "SERVER":
      err = new ServerFailure(f.message, f.non_retryable === true);
      break;
    case "ACTIVITY": {
      const info = f.activity_failure_info ?? { activity_type: str(legacy.activity_type), activity_id: str(legacy.activity_id) };
      const rs = f.activity_failure_info ? info.retry_state : (legacy.retry_state as RetryState | undefined);
      err = new ActivityFailure(f.message, info.activity_type, info.activity_id, rs ?? undefined, cause);
      break;
    }
    case "CHILD_WORKFLOW_EXECUTION": {
      const info = f.child_workflow_execution_failure_info ?? { workflow_id: str(legacy.workflow_id), workflow_type: str(legacy.workflow_type) };
      const rs = f.child_workflow_execution_failure_info ? info.retry_state : (legacy.retry_state as RetryState | undefined);
      const execution: { workflowId: string; runId?: string } = { workflowId: info.workflow_id };
      if (info.run_id) execution.runId = info.run_id;
      err = new ChildWorkflowFailure(info.namespace, execution, info.workflow_type, rs ?? undefined, cause);
      break;
    }
    default:
      err = new ApplicationFailure(f.message, f.type, f.non_retryable === true, asDetails(f.details), cause);
  }
  if (typeof f.stack_trace === "string" && f.stack_trace) err.stack = f.stack_trace;
  return err;
}

/** Activity options, as in Temporal's `ActivityOptions`. */
export interface ActivityOptions {
  taskQueue?: string;
  startToCloseTimeout?: Duration;
  scheduleToCloseTimeout?: Duration;
  scheduleToStartTimeout?: Duration;
  heartbeatTimeout?: Duration;
  retry?: RetryPolicy;
  /** An explicit activity id; by default the n-th activity of the run is `"n"`. */
  activityId?: string;
  /**
   * What cancelling the activity's scope does (Temporal's meanings):
   * TRY_CANCEL (default) requests cancellation and rejects at once;
   * WAIT_CANCELLATION_COMPLETED requests it and waits for the activity to
   * acknowledge (or finish anyway); ABANDON rejects at once without telling
   * the server.
   */
  cancellationType?: ActivityCancellationType;
  /**
   * `false` keeps this call from running inline (in this handler, inside
   * the workflow task, protocol.md §5.9) when the handler inlines
   * activities: it is pushed as an ordinary activity task.
   */
  inline?: boolean;
}

/** Options of a local activity (`proxyLocalActivities`, Temporal's LocalActivityOptions). */
export interface LocalActivityOptions {
  startToCloseTimeout?: Duration;
  scheduleToCloseTimeout?: Duration;
  retry?: RetryPolicy;
  /** Back-offs up to this are waited in-process, longer ones on a durable timer (default 1 minute). */
  localRetryThreshold?: Duration;
  /** An explicit activity id; by default the n-th activity of the run is `"n"`. */
  activityId?: string;
}

export enum ActivityCancellationType {
  TRY_CANCEL = 0,
  WAIT_CANCELLATION_COMPLETED = 1,
  ABANDON = 2,
}

// ---- wire types (openapi/openapi.yaml, generated into ./generated/openapi.ts) ----

/**
 * A history event as the SDK reads it: the spec's `Event` envelope with
 * attributes read tolerantly, so histories with event types or attributes
 * this SDK version does not know still replay (protocol.md §1.2).
 */
export interface HistoryEvent {
  event_id: wire.EventId;
  event_time: wire.Timestamp;
  event_type: string;
  attributes: Record<string, unknown>;
}

/** A workflow task push (protocol.md §5.1); `history_*` members are optional so literal and exported histories can be replayed. */
export type WorkflowTaskRequest = Omit<wire.WorkflowTaskRequest, "history" | "history_length" | "history_size_bytes" | "suggest_continue_as_new"> &
  Partial<Pick<wire.WorkflowTaskRequest, "history_length" | "history_size_bytes" | "suggest_continue_as_new">> & { history: HistoryEvent[] };

/** A push that replays a run's persisted history: `history` read tolerantly and `history_length` optional, as for {@link WorkflowTaskRequest}. */
type Replaying<T extends { history: unknown; history_length: number }> = Omit<T, "history" | "history_length"> &
  Partial<Pick<T, "history_length">> & { history: HistoryEvent[] };

/** A query push (protocol.md §5.5): replay `history`, then run the query's handler. */
export type QueryRequest = Replaying<wire.QueryRequest>;
export type QueryResponse = wire.QueryResponse;

/** An update validation push (protocol.md §5.6): replay `history`, then run the update's validator. */
export type UpdateValidationRequest = Replaying<wire.UpdateValidationRequest>;
export type UpdateValidationResponse = wire.UpdateValidationResponse;

export type ActivityTaskRequest = wire.ActivityTaskRequest;
export type ActivityTaskResponse = wire.ActivityTaskResponse;

/** A command in a workflow task answer (protocol.md §5.2). */
export type Command = wire.WorkflowCommand;

/** A workflow task's answer by commands or a failure (the SDK's own; a session's `{"checkpointed": true}` is {@link CheckpointedAnswer}). */
export type WorkflowTaskResponse = Exclude<wire.WorkflowTaskResponse, { checkpointed: true }>;

/** The answer to a push whose task a checkpoint completed (protocol.md §5.9). */
export type CheckpointedAnswer = Extract<wire.WorkflowTaskResponse, { checkpointed: true }>;

/** Positional arguments from a JSON payload: the SDKs send an array; anything else is one argument. */
export function argsFromPayload(input: unknown): unknown[] {
  if (Array.isArray(input)) return input;
  if (input === undefined || input === null) return [];
  return [input];
}

// ---- custom search attributes (as @temporalio/common) ----

/** A custom search attribute's type, as `@temporalio/common` names them. */
export const SearchAttributeType = {
  TEXT: "TEXT",
  KEYWORD: "KEYWORD",
  INT: "INT",
  DOUBLE: "DOUBLE",
  BOOL: "BOOL",
  DATETIME: "DATETIME",
  KEYWORD_LIST: "KEYWORD_LIST",
} as const;
export type SearchAttributeType = (typeof SearchAttributeType)[keyof typeof SearchAttributeType];

/** The JavaScript value of each type. */
export interface IndexedValueTypeMapping {
  TEXT: string;
  KEYWORD: string;
  INT: number;
  DOUBLE: number;
  BOOL: boolean;
  DATETIME: Date;
  KEYWORD_LIST: string[];
}

/** A typed search attribute name (`defineSearchAttributeKey`). */
export interface SearchAttributeKey<T extends SearchAttributeType> {
  name: string;
  type: T;
}

export function defineSearchAttributeKey<T extends SearchAttributeType>(name: string, type: T): SearchAttributeKey<T> {
  return { name, type };
}

export type SearchAttributePair = {
  [T in SearchAttributeType]: { key: SearchAttributeKey<T>; value: IndexedValueTypeMapping[T] };
}[SearchAttributeType];

/** A key and its new value; `null` removes the attribute. */
export type SearchAttributeUpdatePair = {
  [T in SearchAttributeType]: { key: SearchAttributeKey<T>; value: IndexedValueTypeMapping[T] | null };
}[SearchAttributeType];

const WIRE_TYPES: Record<SearchAttributeType, string> = {
  TEXT: "Text",
  KEYWORD: "Keyword",
  INT: "Int",
  DOUBLE: "Double",
  BOOL: "Bool",
  DATETIME: "Datetime",
  KEYWORD_LIST: "KeywordList",
};

/** A value as the plain JSON the server types by the namespace's registry. */
export function searchAttributeToWire(type: SearchAttributeType, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (type === "DATETIME") return (value instanceof Date ? value : new Date(String(value))).toISOString();
  return value;
}

function searchAttributeFromWire(type: SearchAttributeType, value: unknown): unknown {
  if (type === "DATETIME") return new Date(String(value));
  return value;
}

/** A run's custom search attributes, typed (`@temporalio/common`'s `TypedSearchAttributes`). */
export class TypedSearchAttributes {
  private readonly pairs: SearchAttributePair[];

  constructor(initial: SearchAttributePair[] = []) {
    this.pairs = [...initial];
  }

  get<T extends SearchAttributeType>(key: SearchAttributeKey<T>): IndexedValueTypeMapping[T] | undefined {
    const p = this.pairs.find((x) => x.key.name === key.name && x.key.type === key.type);
    return p?.value as IndexedValueTypeMapping[T] | undefined;
  }

  getAll(): SearchAttributePair[] {
    return [...this.pairs];
  }

  /** A copy with each update applied (a `null` value removes the key). */
  updateCopy(updates: SearchAttributeUpdatePair[]): TypedSearchAttributes {
    const byName = new Map(this.pairs.map((p) => [p.key.name, p]));
    for (const u of updates) {
      if (u.value === null) byName.delete(u.key.name);
      else byName.set(u.key.name, u as SearchAttributePair);
    }
    return new TypedSearchAttributes([...byName.values()]);
  }

  /** Plain JSON by name, as starts send them. */
  toWire(): Record<string, unknown> {
    return Object.fromEntries(this.pairs.map((p) => [p.key.name, searchAttributeToWire(p.key.type, p.value)]));
  }

  /** From the server's typed form (`{"name": {"type": "Keyword", "value": …}}`). */
  static fromWire(typed: unknown): TypedSearchAttributes {
    const pairs: SearchAttributePair[] = [];
    if (typed !== null && typeof typed === "object") {
      for (const [name, raw] of Object.entries(typed as Record<string, unknown>)) {
        if (raw === null || typeof raw !== "object") continue;
        const v = raw as { type?: unknown; value?: unknown };
        const type = (Object.keys(WIRE_TYPES) as SearchAttributeType[]).find((t) => WIRE_TYPES[t] === v.type);
        if (type === undefined) continue;
        pairs.push({ key: { name, type }, value: searchAttributeFromWire(type, v.value) } as SearchAttributePair);
      }
    }
    return new TypedSearchAttributes(pairs);
  }
}
