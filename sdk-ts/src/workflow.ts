/**
 * The workflow API (`@baton/sdk/workflow`, mirroring `@temporalio/workflow`).
 * Call these only from workflow code: they act on the workflow task being
 * replayed.
 */
import type { JsonSchema, SchemaOptions } from "./core/schema.js";
import {
  type ActivityOptions,
  type LocalActivityOptions,
  ContinueAsNew,
  ChildWorkflowCancellationType,
  type Duration,
  type ParentClosePolicy,
  type RetryPolicy,
  type SearchAttributePair,
  type SearchAttributeUpdatePair,
  TypedSearchAttributes,
  formatDuration,
  msToNumber,
  retryPolicyToWire,
} from "./common.js";
import type { ContinueAsNewWorkflowExecutionAttributes, IdReusePolicy, StartChildWorkflowExecutionAttributes } from "./generated/openapi.js";
import { CancellationScope } from "./core/cancellation_scope.js";
import { currentInstance, maybeCurrentInstance, type WorkflowInfo } from "./core/workflow_instance.js";

export { CancellationScope, type CancellationScopeOptions } from "./core/cancellation_scope.js";
export { withSchema, type JsonSchema, type SchemaOptions } from "./core/schema.js";

export {
  defineSearchAttributeKey,
  type IndexedValueTypeMapping,
  type SearchAttributeKey,
  type SearchAttributePair,
  SearchAttributeType,
  type SearchAttributeUpdatePair,
  TypedSearchAttributes,
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  ContinueAsNew,
  ChildWorkflowCancellationType,
  ChildWorkflowFailure,
  ParentClosePolicy,
  WorkflowExecutionAlreadyStartedError,
  type ActivityOptions,
  type LocalActivityOptions,
  type Duration,
  NonDeterminismError,
  DeterminismViolationError,
  type RetryPolicy,
  TemporalFailure,
  BatonFailure,
  TimeoutFailure,
  TerminatedFailure,
  isCancellation,
} from "./common.js";
export type { WorkflowInfo } from "./core/workflow_instance.js";

type AnyFunction = (...args: any[]) => any;

/** The activities of `A` as the workflow sees them: each returns a promise of its result. */
export type ActivityInterfaceFor<A> = {
  [K in keyof A]: A[K] extends AnyFunction ? (...args: Parameters<A[K]>) => Promise<Awaited<ReturnType<A[K]>>> : never;
};

/**
 * Activity stubs: `const { greet } = proxyActivities<typeof activities>({ startToCloseTimeout: '30s' })`.
 * Each call schedules the activity named by the property.
 */
export function proxyActivities<A = Record<string, AnyFunction>>(options: ActivityOptions): ActivityInterfaceFor<A> {
  if (options.startToCloseTimeout === undefined && options.scheduleToCloseTimeout === undefined) {
    throw new TypeError("proxyActivities needs startToCloseTimeout or scheduleToCloseTimeout");
  }
  return new Proxy({} as ActivityInterfaceFor<A>, {
    get(_target, prop) {
      if (typeof prop !== "string") return undefined;
      return (...args: unknown[]) => currentInstance("proxyActivities").scheduleActivity(prop, args, options);
    },
  });
}

/**
 * Local activity stubs (Temporal's `proxyLocalActivities`):
 * `const { normalise } = proxyLocalActivities<typeof activities>({ startToCloseTimeout: '5s' })`.
 * Each call runs the activity in this handler, inside the workflow task,
 * and records its outcome as a LocalActivity marker with the task's
 * completion (protocol.md §14.6): no activity task, no push of its own.
 * Attempts are retried in-process while the back-off is at most
 * `localRetryThreshold` (default 1 minute), then after a durable timer.
 * Cancelling the call's scope cancels it at once (TRY_CANCEL).
 */
export function proxyLocalActivities<A = Record<string, AnyFunction>>(options: LocalActivityOptions): ActivityInterfaceFor<A> {
  if (options.startToCloseTimeout === undefined && options.scheduleToCloseTimeout === undefined) {
    throw new TypeError("proxyLocalActivities needs startToCloseTimeout or scheduleToCloseTimeout");
  }
  return new Proxy({} as ActivityInterfaceFor<A>, {
    get(_target, prop) {
      if (typeof prop !== "string") return undefined;
      return (...args: unknown[]) => currentInstance("proxyLocalActivities").scheduleLocalActivity(prop, args, options);
    },
  });
}

/** Schedules one activity by type name. */
export function executeActivity<R = unknown>(activityType: string, options: ActivityOptions, ...args: unknown[]): Promise<R> {
  return currentInstance("executeActivity").scheduleActivity(activityType, args, options) as Promise<R>;
}

/**
 * A durable timer: `await sleep('7 days')`. Cancelling its
 * {@link CancellationScope} cancels the timer and rejects with a
 * `CancelledFailure`.
 */
export function sleep(duration: Duration): Promise<void> {
  const inst = currentInstance("sleep");
  if (msToNumber(duration) <= 0) return Promise.resolve();
  return inst.startTimer(duration);
}

/**
 * Waits until `fn()` is true (re-checked whenever the workflow is idle).
 * With a timeout, resolves `false` if it ran out first (a durable timer in
 * a scope of its own, cancelled when the condition wins). Rejects if the
 * current scope is cancelled first.
 */
export function condition(fn: () => boolean): Promise<void>;
export function condition(fn: () => boolean, timeout: Duration): Promise<boolean>;
export async function condition(fn: () => boolean, timeout?: Duration): Promise<boolean | void> {
  const inst = currentInstance("condition");
  if (timeout === undefined) {
    if (!fn()) await inst.condition(fn);
    return;
  }
  if (fn()) return true;
  const scope = new CancellationScope();
  return scope.run(async () => {
    try {
      return await Promise.race([sleep(timeout).then(() => false), inst.condition(fn).then(() => true)]);
    } finally {
      scope.cancel();
    }
  });
}

/** Branches on a code change: true for runs that reach this point with the new code (records a `core_patch` marker). */
export function patched(patchId: string): boolean {
  return currentInstance("patched").patch(patchId, false);
}

/** Marks a patch whose old branch is gone: runs with or without the marker replay. */
export function deprecatePatch(patchId: string): void {
  currentInstance("deprecatePatch").patch(patchId, true);
}

/**
 * Sets custom search attributes of the run (`{ key, value }` with a key from
 * `defineSearchAttributeKey`), or removes one with `value: null`, as in
 * `@temporalio/workflow`. The server types them by the namespace's registry
 * and fails the workflow task (BAD_SEARCH_ATTRIBUTES) on an unknown name or
 * a wrong type. `workflowInfo().typedSearchAttributes` reflects the change
 * at once.
 */
export function upsertSearchAttributes(updates: SearchAttributeUpdatePair[]): void {
  currentInstance("upsertSearchAttributes").upsertSearchAttributes(updates);
}

/** The run being executed. */
export function workflowInfo(): WorkflowInfo {
  return currentInstance("workflowInfo").info;
}

/** A deterministic random UUID (v4 layout), from the run's seeded generator. */
export function uuid4(): string {
  const inst = currentInstance("uuid4");
  const hex: string[] = [];
  for (let i = 0; i < 16; i++) {
    let b = Math.floor(inst.random() * 256);
    if (i === 6) b = (b & 0x0f) | 0x40;
    if (i === 8) b = (b & 0x3f) | 0x80;
    hex.push(b.toString(16).padStart(2, "0"));
  }
  const h = hex.join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** True while the workflow re-runs code whose commands are already in the history. */
export function inWorkflowContext(): boolean {
  return maybeCurrentInstance() !== undefined;
}

type LogFn = (message: string, attrs?: Record<string, unknown>) => void;

function logAt(level: "debug" | "info" | "warn" | "error"): LogFn {
  return (message, attrs) => {
    const inst = maybeCurrentInstance();
    if (inst?.replaying) return; // replayed code logs once, when it first runs
    const ctx = inst ? { workflowId: inst.info.workflowId, runId: inst.info.runId, workflowType: inst.info.workflowType } : {};
    console[level](`[baton.workflow] ${message}`, { ...ctx, ...attrs });
  };
}

/** A replay-aware logger: messages from replayed code are dropped. */
export const log = {
  trace: logAt("debug"),
  debug: logAt("debug"),
  info: logAt("info"),
  warn: logAt("warn"),
  error: logAt("error"),
};

// ---- signals, queries and updates ----


/** A signal's name and argument types, as in Temporal. */
export interface SignalDefinition<Args extends unknown[] = [], Name extends string = string> {
  type: "signal";
  name: Name;
  /** The first argument's JSON Schema, published in the description (docs/protocol.md §1.5). */
  schema?: JsonSchema;
  /** Every argument's JSON Schema, in order (instead of `schema`). */
  args?: JsonSchema[];
  /** Type-level only. */
  readonly __args?: Args;
}

export function defineSignal<Args extends unknown[] = [], Name extends string = string>(name: Name, options: SchemaOptions = {}): SignalDefinition<Args, Name> {
  return { type: "signal", name, ...options };
}
/** A query's name, argument and result types, as in Temporal. */
export interface QueryDefinition<Ret, Args extends unknown[] = [], Name extends string = string> {
  type: "query";
  name: Name;
  /** The first argument's JSON Schema, published in the description (docs/protocol.md §1.5). */
  schema?: JsonSchema;
  /** Every argument's JSON Schema, in order (instead of `schema`). */
  args?: JsonSchema[];
  /** Type-level only. */
  readonly __args?: Args;
  /** Type-level only. */
  readonly __ret?: Ret;
}

export function defineQuery<Ret, Args extends unknown[] = [], Name extends string = string>(name: Name, options: SchemaOptions = {}): QueryDefinition<Ret, Args, Name> {
  return { type: "query", name, ...options };
}
/** An update's name, argument and result types, as in Temporal. */
export interface UpdateDefinition<Ret, Args extends unknown[] = [], Name extends string = string> {
  type: "update";
  name: Name;
  /** The first argument's JSON Schema, published in the description (docs/protocol.md §1.5). */
  schema?: JsonSchema;
  /** Every argument's JSON Schema, in order (instead of `schema`). */
  args?: JsonSchema[];
  /** Type-level only. */
  readonly __args?: Args;
  /** Type-level only. */
  readonly __ret?: Ret;
}

export function defineUpdate<Ret, Args extends unknown[] = [], Name extends string = string>(name: Name, options: SchemaOptions = {}): UpdateDefinition<Ret, Args, Name> {
  return { type: "update", name, ...options };
}

/** Options of an update handler: a validator runs before the update is admitted (protocol.md §5.6). */
export interface UpdateHandlerOptions<Args extends unknown[]> {
  /**
   * Throws to reject the update (nothing is recorded); must be synchronous
   * and must not change the workflow. Runs once, when the update arrives,
   * never on replay.
   */
  validator?: (...args: Args) => void;
  description?: string;
}

/**
 * Sets (or with `undefined`, removes) the handler of a signal, a query or
 * an update. Signals and updates that arrived before their handler was set
 * are delivered when it is set. Query handlers must be synchronous and
 * must not change the workflow's state. An update handler may await
 * activities and timers; its return value completes the update, an
 * `ApplicationFailure` fails it, and any other error fails the workflow
 * task.
 */
export function setHandler<Args extends unknown[]>(def: SignalDefinition<Args>, handler: ((...args: Args) => void | Promise<void>) | undefined): void;
export function setHandler<Ret, Args extends unknown[]>(def: QueryDefinition<Ret, Args>, handler: ((...args: Args) => Ret) | undefined): void;
export function setHandler<Ret, Args extends unknown[]>(
  def: UpdateDefinition<Ret, Args>,
  handler: ((...args: Args) => Ret | Promise<Ret>) | undefined,
  options?: UpdateHandlerOptions<Args>,
): void;
export function setHandler(
  def: { type?: string; name: string },
  handler: ((...args: never[]) => unknown) | undefined,
  options?: UpdateHandlerOptions<never[]>,
): void {
  const fn = handler as ((...args: unknown[]) => unknown) | undefined;
  const inst = currentInstance("setHandler");
  if (def.type === "signal") inst.setSignalHandler(def.name, fn);
  else if (def.type === "query") inst.setQueryHandler(def.name, fn);
  else inst.setUpdateHandler(def.name, fn === undefined ? undefined : { handler: fn, validator: options?.validator as ((...args: unknown[]) => void) | undefined });
}
/** The next run's options (Temporal's `ContinueAsNewOptions`); unset ones are carried from this run. */
export interface ContinueAsNewOptions {
  workflowType?: string;
  taskQueue?: string;
  workflowRunTimeout?: Duration;
  workflowTaskTimeout?: Duration;
  memo?: Record<string, unknown>;
  /** The next run's search attributes; unset carries this run's. */
  typedSearchAttributes?: TypedSearchAttributes | SearchAttributePair[];
}

/** Search attributes as a command carries them (plain JSON by name). */
function searchAttributesToWire(given: TypedSearchAttributes | SearchAttributePair[]): Record<string, unknown> {
  return (Array.isArray(given) ? new TypedSearchAttributes(given) : given).toWire();
}

/**
 * A function that continues the workflow as new with `options`: it
 * returns a promise that rejects with {@link ContinueAsNew}; awaiting it
 * ends the run (CONTINUED_AS_NEW) and the next run starts with the
 * arguments given, a fresh history, and this run's options unless changed.
 */
export function makeContinueAsNewFunc<F extends (...args: any[]) => Promise<unknown>>(
  options: ContinueAsNewOptions = {},
): (...args: Parameters<F>) => Promise<never> {
  return (...args) => {
    currentInstance("continueAsNew");
    const command: ContinueAsNewWorkflowExecutionAttributes = { input: args };
    if (options.workflowType !== undefined) command.workflow_type = options.workflowType;
    if (options.taskQueue !== undefined) command.task_queue = options.taskQueue;
    if (options.workflowRunTimeout !== undefined) command.workflow_run_timeout = formatDuration(options.workflowRunTimeout);
    if (options.workflowTaskTimeout !== undefined) command.workflow_task_timeout = formatDuration(options.workflowTaskTimeout);
    if (options.memo !== undefined) command.memo = options.memo;
    if (options.typedSearchAttributes !== undefined) command.search_attributes = searchAttributesToWire(options.typedSearchAttributes);
    return Promise.reject(new ContinueAsNew(command));
  };
}

/** `await continueAsNew<typeof myWorkflow>(...args)`: continues this workflow as new with the same options. */
export function continueAsNew<F extends (...args: any[]) => Promise<unknown>>(...args: Parameters<F>): Promise<never> {
  return makeContinueAsNewFunc<F>()(...args);
}
type WorkflowFn = (...args: any[]) => Promise<unknown>;

/** Temporal's `ChildWorkflowOptions`. */
export interface ChildWorkflowOptions {
  /** Default: `<this workflow id>-child-<n>`. */
  workflowId?: string;
  args?: unknown[];
  /** Default: this run's task queue. */
  taskQueue?: string;
  workflowExecutionTimeout?: Duration;
  workflowRunTimeout?: Duration;
  workflowTaskTimeout?: Duration;
  retry?: RetryPolicy;
  workflowIdReusePolicy?: IdReusePolicy;
  /** What happens to the child when this workflow closes first (default TERMINATE). */
  parentClosePolicy?: ParentClosePolicy;
  /** What cancelling the child's scope waits for (default WAIT_CANCELLATION_COMPLETED). */
  cancellationType?: ChildWorkflowCancellationType;
  memo?: Record<string, unknown>;
  /** The child's search attributes (it inherits none of this workflow's). */
  typedSearchAttributes?: TypedSearchAttributes | SearchAttributePair[];
}

/** A started child workflow. */
export interface ChildWorkflowHandle<T extends WorkflowFn> {
  readonly workflowId: string;
  readonly firstExecutionRunId: string;
  /** The child's result; ChildWorkflowFailure if it failed, timed out, was cancelled or terminated. */
  result(): Promise<Awaited<ReturnType<T>>>;
  /** Signals the child (SignalExternalWorkflowExecution, child only). */
  signal<Args extends unknown[]>(def: SignalDefinition<Args> | string, ...args: Args): Promise<void>;
}

function childCommand(workflowType: string, options: ChildWorkflowOptions, workflowId: string): StartChildWorkflowExecutionAttributes {
  const a: StartChildWorkflowExecutionAttributes = { workflow_id: workflowId, workflow_type: workflowType, input: options.args ?? [] };
  if (options.taskQueue !== undefined) a.task_queue = options.taskQueue;
  if (options.workflowExecutionTimeout !== undefined) a.workflow_execution_timeout = formatDuration(options.workflowExecutionTimeout);
  if (options.workflowRunTimeout !== undefined) a.workflow_run_timeout = formatDuration(options.workflowRunTimeout);
  if (options.workflowTaskTimeout !== undefined) a.workflow_task_timeout = formatDuration(options.workflowTaskTimeout);
  if (options.retry !== undefined) a.retry_policy = retryPolicyToWire(options.retry);
  if (options.workflowIdReusePolicy !== undefined) a.workflow_id_reuse_policy = options.workflowIdReusePolicy;
  if (options.parentClosePolicy !== undefined) a.parent_close_policy = options.parentClosePolicy;
  if (options.memo !== undefined) a.memo = options.memo;
  if (options.typedSearchAttributes !== undefined) a.search_attributes = searchAttributesToWire(options.typedSearchAttributes);
  return a;
}

/**
 * Starts a child workflow (a workflow function, or a type name) and
 * resolves once it started: `await startChild(fulfill, { args: [line] })`.
 * Rejects with WorkflowExecutionAlreadyStartedError if its id is taken.
 */
export async function startChild<T extends WorkflowFn>(workflow: T | string, options: ChildWorkflowOptions = {}): Promise<ChildWorkflowHandle<T>> {
  const inst = currentInstance("startChild");
  const workflowType = typeof workflow === "string" ? workflow : workflow.name;
  const workflowId = options.workflowId ?? inst.nextChildId();
  const child = inst.startChild(childCommand(workflowType, options, workflowId), options.cancellationType ?? ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED);
  const runId = await child.started.promise;
  return {
    workflowId,
    firstExecutionRunId: runId,
    result: () => child.result.promise as Promise<Awaited<ReturnType<T>>>,
    signal: (def, ...args) => currentInstance("signal").signalExternal(workflowId, undefined, typeof def === "string" ? def : def.name, args, true),
  };
}

/** Starts a child workflow and waits for its result. */
export async function executeChild<T extends WorkflowFn>(workflow: T | string, options: ChildWorkflowOptions = {}): Promise<Awaited<ReturnType<T>>> {
  return (await startChild(workflow, options)).result();
}

/** A handle on another workflow, to signal it or ask it to cancel. */
export interface ExternalWorkflowHandle {
  readonly workflowId: string;
  readonly runId: string | undefined;
  /** Resolves once the signal was recorded in the workflow; rejects if it has no open run. */
  signal<Args extends unknown[]>(def: SignalDefinition<Args> | string, ...args: Args): Promise<void>;
  /** Resolves once the cancellation request was recorded in the workflow; rejects if it has no open run. */
  cancel(): Promise<void>;
}

export function getExternalWorkflowHandle(workflowId: string, runId?: string): ExternalWorkflowHandle {
  return {
    workflowId,
    runId,
    signal: (def, ...args) => currentInstance("signal").signalExternal(workflowId, runId, typeof def === "string" ? def : def.name, args, false),
    cancel: () => currentInstance("cancel").cancelExternal(workflowId, runId, false),
  };
}
