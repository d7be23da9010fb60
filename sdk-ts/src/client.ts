/**
 * The client (`@baton/sdk/client`, mirroring `@temporalio/client`) over the
 * server's REST API (openapi/openapi.yaml): workflows, async activity
 * completion, schedules (`client.schedule`, from ./schedule.ts), batch
 * operations (`client.batch`, from ./batch.ts) and inbound webhook sources
 * (`client.webhook`, from ./webhook.ts).
 */
import {
  type Duration,
  type FailureJson,
  type HistoryEvent,
  type RetryPolicy,
  type RetryState,
  type SearchAttributePair,
  CancelledFailure,
  TerminatedFailure,
  TypedSearchAttributes,
  TimeoutFailure,
  failureToError,
  formatDuration,
  retryPolicyToWire,
} from "./common.js";

import { BatchClient } from "./batch.js";
import { WebhookClient } from "./webhook.js";
import type * as wire from "./generated/openapi.js";
import { httpCall } from "./core/http.js";
import { oneAtATime, resolveEvents } from "./core/payloads.js";
import { injectTrace } from "./core/tracing.js";
import { ScheduleClient } from "./schedule.js";
import type { QueryDefinition, UpdateDefinition } from "./workflow.js";

export {
  type Duration,
  defineSearchAttributeKey,
  type SearchAttributeKey,
  type SearchAttributePair,
  SearchAttributeType,
  TypedSearchAttributes,
} from "./common.js";
export * from "./schedule.js";
export * from "./batch.js";
export * from "./webhook.js";

/** A REST call failed; `code` is the problem's stable code (`not_found`, `conflict`, …). */
export class ServiceError extends Error {
  override readonly name: string = "ServiceError";
  constructor(
    message: string,
    public readonly status: number,
    public readonly code: string | undefined,
    /** The problem's `failure`, where the code carries one (`update_rejected`). */
    public readonly failure?: FailureJson,
  ) {
    super(message);
  }
}

export class WorkflowExecutionAlreadyStartedError extends ServiceError {
  override readonly name = "WorkflowExecutionAlreadyStartedError";
  constructor(
    message: string,
    public readonly workflowId: string,
    public readonly workflowType: string,
  ) {
    super(message, 409, "already_exists");
  }
}

export class WorkflowNotFoundError extends ServiceError {
  override readonly name = "WorkflowNotFoundError";
}

/**
 * The workflow's handler answered the query with a failure (`400
 * query_failed`): the handler threw, returned a promise, or the arguments
 * were refused. The message carries the failure's.
 */
export class WorkflowQueryFailedError extends ServiceError {
  override readonly name: string = "WorkflowQueryFailedError";
  constructor(
    message: string,
    public readonly queryName: string,
  ) {
    super(message, 400, "query_failed");
  }
}

/** The workflow registered no handler for the query (as in `@temporalio/client`). */
export class QueryNotRegisteredError extends WorkflowQueryFailedError {
  override readonly name: string = "QueryNotRegisteredError";
}

/** The run closed without a result (failed, timed out, terminated, cancelled); `cause` says how. */
export class WorkflowFailedError extends Error {
  override readonly name = "WorkflowFailedError";
  constructor(
    message: string,
    override readonly cause: Error | undefined,
    public readonly retryState: RetryState | undefined,
    public readonly status: string,
  ) {
    super(message);
  }
}

export interface ConnectionOptions {
  /** The server, e.g. `http://127.0.0.1:7233`. */
  address?: string;
  apiKey?: string;
}

/** Where the REST API is, and how to authenticate to it. */
export class Connection {
  readonly address: string;
  private readonly apiKey: string | undefined;

  private constructor(options: ConnectionOptions) {
    this.address = (options.address ?? "http://127.0.0.1:7233").replace(/\/+$/, "");
    this.apiKey = options.apiKey;
  }

  static async connect(options: ConnectionOptions = {}): Promise<Connection> {
    return new Connection(options);
  }

  static lazy(options: ConnectionOptions = {}): Connection {
    return new Connection(options);
  }

  /** One REST call; problems become {@link ServiceError}. */
  async call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    await injectTrace(headers);
    const { status, text } = await httpCall(method, `${this.address}${path}`, headers, body !== undefined ? JSON.stringify(body) : undefined);
    let json: unknown = null;
    if (text) {
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
    }
    if (status >= 400) {
      const p = (json ?? {}) as Partial<wire.Problem>;
      throw new ServiceError(`${method} ${path}: ${status} ${p.detail ?? p.title ?? text}`, status, p.code, p.failure);
    }
    return { status, json };
  }

  async close(): Promise<void> {}
}

export interface WorkflowStartOptions {
  workflowId: string;
  taskQueue: string;
  args?: unknown[];
  workflowExecutionTimeout?: Duration;
  workflowRunTimeout?: Duration;
  workflowTaskTimeout?: Duration;
  workflowIdReusePolicy?: wire.IdReusePolicy;
  workflowIdConflictPolicy?: wire.IdConflictPolicy;
  requestId?: string;
  /** Non-indexed fields shown by describe and readable by the workflow (`workflowInfo().memo`); carried through continue-as-new. */
  memo?: Record<string, unknown>;
  /** A workflow retry policy: a failed or timed-out run is retried as a new run of the chain. */
  retry?: RetryPolicy;
  /** Custom search attributes (`@temporalio/client`'s `typedSearchAttributes`), typed by the namespace's registry; carried through continue-as-new. */
  typedSearchAttributes?: TypedSearchAttributes | SearchAttributePair[];
}

export interface WorkflowExecutionDescription {
  workflowId: string;
  runId: string;
  type: string;
  taskQueue: string;
  status: { name: string };
  startTime: Date;
  closeTime?: Date;
  historyLength: number;
  /** The run's custom search attributes (filled in by `describe()`; empty in lists). */
  typedSearchAttributes: TypedSearchAttributes;
  raw: Record<string, unknown>;
}

type WorkflowRef = string | ((...args: never[]) => Promise<unknown>);

function typeName(w: WorkflowRef): string {
  return typeof w === "string" ? w : w.name;
}

function describeExecution(e: wire.WorkflowExecution): WorkflowExecutionDescription {
  const d: WorkflowExecutionDescription = {
    workflowId: e.workflow_id,
    runId: e.run_id,
    type: e.workflow_type,
    taskQueue: e.task_queue,
    status: { name: e.status },
    startTime: new Date(e.start_time),
    historyLength: e.history_length,
    typedSearchAttributes: new TypedSearchAttributes(),
    raw: e,
  };
  if (e.close_time !== undefined) d.closeTime = new Date(e.close_time);
  return d;
}

/** Why a run that did not complete closed, as Temporal's client says it: the failure's class. */
function closedCause(r: wire.WorkflowResult): Error | undefined {
  if (r.failure) return failureToError(r.failure);
  switch (r.status) {
    case "CANCELED":
      return new CancelledFailure("Workflow cancelled");
    case "TERMINATED":
      return new TerminatedFailure("Workflow terminated");
    case "TIMED_OUT":
      return new TimeoutFailure("Workflow timed out", "START_TO_CLOSE");
    default:
      return undefined;
  }
}

/** The members a start and a signal-with-start share. */
function startBody(type: string, options: Omit<WorkflowStartOptions, "workflowIdConflictPolicy">): wire.StartWorkflowRequest & wire.SignalWithStartRequest {
  const body: wire.StartWorkflowRequest & wire.SignalWithStartRequest = { workflow_type: type, task_queue: options.taskQueue, input: options.args ?? [] };
  if (options.workflowExecutionTimeout !== undefined) body.workflow_execution_timeout = formatDuration(options.workflowExecutionTimeout);
  if (options.workflowRunTimeout !== undefined) body.workflow_run_timeout = formatDuration(options.workflowRunTimeout);
  if (options.workflowTaskTimeout !== undefined) body.workflow_task_timeout = formatDuration(options.workflowTaskTimeout);
  if (options.workflowIdReusePolicy !== undefined) body.id_reuse_policy = options.workflowIdReusePolicy;
  if (options.requestId !== undefined) body.request_id = options.requestId;
  if (options.memo !== undefined) body.memo = options.memo;
  if (options.retry !== undefined) body.retry_policy = retryPolicyToWire(options.retry);
  if (options.typedSearchAttributes !== undefined) {
    const typed = Array.isArray(options.typedSearchAttributes) ? new TypedSearchAttributes(options.typedSearchAttributes) : options.typedSearchAttributes;
    body.search_attributes = typed.toWire();
  }
  return body;
}

/**
 * A handle on a workflow id, and on one run only when `runId` is set. As in
 * Temporal, handles from `start`, `signalWithStart` and `getHandle(id)` name
 * no run: every call reaches the workflow id's latest run (after
 * continue-as-new, a retry or a reset); `firstExecutionRunId` is the run
 * `start` created.
 */
export class WorkflowHandle<R = unknown> {
  constructor(
    private readonly conn: Connection,
    private readonly namespace: string,
    readonly workflowId: string,
    readonly runId: string | undefined,
    readonly firstExecutionRunId?: string,
  ) {}

  private path(suffix = "", query: Record<string, string> = {}): string {
    const q = new URLSearchParams(query);
    if (this.runId) q.set("run_id", this.runId);
    const qs = q.toString();
    return `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/workflows/${encodeURIComponent(this.workflowId)}${suffix}${qs ? `?${qs}` : ""}`;
  }

  private async call(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    try {
      return await this.conn.call(method, path, body);
    } catch (err) {
      if (err instanceof ServiceError && err.status === 404) throw new WorkflowNotFoundError(err.message, 404, err.code);
      throw err;
    }
  }

  /** Waits for the run to close: its result, or {@link WorkflowFailedError}. */
  async result(): Promise<R> {
    for (;;) {
      const { json } = await this.call("GET", this.path("/result", { wait: "60s" }));
      const r = json as wire.WorkflowResult;
      switch (r.status) {
        case "RUNNING":
          continue;
        case "COMPLETED":
          return r.result as R;
        case "FAILED":
          throw new WorkflowFailedError("Workflow execution failed", r.failure ? failureToError(r.failure) : undefined, undefined, r.status);
        default:
          throw new WorkflowFailedError(`Workflow execution ${r.status.toLowerCase().replace(/_/g, " ")}`, closedCause(r), undefined, r.status);
      }
    }
  }

  /** The run's summary; `pending` is the whole `WorkflowDescription` (pending activities, timers, workflow task). */
  async describe(): Promise<WorkflowExecutionDescription & { pending: wire.WorkflowDescription }> {
    const { json } = await this.call("GET", this.path());
    const j = json as wire.WorkflowDescription;
    return { ...describeExecution(j.execution), typedSearchAttributes: TypedSearchAttributes.fromWire(j.search_attributes), pending: j };
  }

  async terminate(reason?: string): Promise<void> {
    const body: wire.TerminateWorkflowRequest = {};
    if (this.runId) body.run_id = this.runId;
    if (reason !== undefined) body.reason = reason;
    await this.call("POST", this.path("/terminate").replace(/\?.*$/, ""), body);
  }

  /**
   * The persisted history, every page (export it for the replayer). The
   * payloads its events hold by reference where replay reads them
   * (docs/protocol.md §9.1) are put in place, fetched from the run's
   * payload route, so the Replayer replays it.
   */
  async fetchHistory(): Promise<{ workflow_id: string; run_id: string; events: HistoryEvent[] }> {
    const events: HistoryEvent[] = [];
    let token: string | undefined;
    let runId = this.runId ?? "";
    do {
      const { json } = await this.call("GET", this.path("/history", token ? { next_page_token: token } : {}));
      const page = json as wire.HistoryPage;
      runId = page.run_id;
      events.push(...page.events);
      token = page.next_page_token ?? undefined;
    } while (token);
    const run = `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/workflows/${encodeURIComponent(this.workflowId)}/runs/${encodeURIComponent(runId)}/payloads/`;
    await resolveEvents(events, undefined, () =>
      oneAtATime(async (sha256) => {
        const { json } = await this.call("GET", `${run}${sha256}`);
        if (json === null || typeof json !== "object" || !("value" in json)) throw new Error(`GET ${run}${sha256}: the answer has no value`);
        return (json as wire.PayloadView).value;
      }),
    );
    return { workflow_id: this.workflowId, run_id: runId, events };
  }

  /** Sends a signal (a name or a `defineSignal` definition) to the run. */
  async signal(signal: string | { name: string }, ...args: unknown[]): Promise<void> {
    const signalName = typeof signal === "string" ? signal : signal.name;
    const body: wire.SignalWorkflowRequest = { input: args };
    if (this.runId) body.run_id = this.runId;
    await this.call("POST", this.path(`/signal/${encodeURIComponent(signalName)}`).replace(/\?.*$/, ""), body);
  }

  async cancel(): Promise<void> {
    const body: wire.CancelWorkflowRequest = {};
    if (this.runId) body.run_id = this.runId;
    await this.call("POST", this.path("/cancel").replace(/\?.*$/, ""), body);
  }

  /**
   * Queries the run (a name or a `defineQuery` definition): the workflow's
   * handler answers from the replayed history; nothing is recorded. Works on
   * closed runs. {@link QueryNotRegisteredError} if the workflow has no such
   * handler, {@link WorkflowQueryFailedError} if it failed, a
   * {@link ServiceError} (`503 unavailable`) if the endpoint did not answer.
   */
  async query<Ret = unknown, Args extends unknown[] = unknown[]>(query: QueryDefinition<Ret, Args> | string, ...args: Args): Promise<Ret> {
    const queryName = typeof query === "string" ? query : query.name;
    const body: wire.QueryWorkflowRequest = { args };
    if (this.runId) body.run_id = this.runId;
    try {
      const { json } = await this.call("POST", this.path(`/query/${encodeURIComponent(queryName)}`).replace(/\?.*$/, ""), body);
      return (json as wire.QueryWorkflowResponse).result as Ret;
    } catch (err) {
      if (err instanceof ServiceError && err.code === "query_failed") {
        if (/did not register a handler for/.test(err.message)) throw new QueryNotRegisteredError(err.message, queryName);
        throw new WorkflowQueryFailedError(err.message, queryName);
      }
      throw err;
    }
  }

  /**
   * Sends an update (a name or a `defineUpdate` definition) and waits for
   * its handler's result (protocol.md §5.6). {@link WorkflowUpdateFailedError}
   * if the validator rejected it or the handler failed; an `updateId` makes
   * retries safe (the first outcome is returned).
   */
  async executeUpdate<Ret = unknown, Args extends unknown[] = unknown[]>(
    update: UpdateDefinition<Ret, Args> | string,
    options: WorkflowUpdateOptions & { args?: Args } = {},
  ): Promise<Ret> {
    return (await this.startUpdate(update, { ...options, waitForStage: WorkflowUpdateStage.COMPLETED })).result();
  }

  /**
   * Sends an update and returns once it reached `waitForStage`
   * (`ACCEPTED`: the workflow took it and its handler started).
   * {@link WorkflowUpdateFailedError} if the validator rejected it.
   */
  async startUpdate<Ret = unknown, Args extends unknown[] = unknown[]>(
    update: UpdateDefinition<Ret, Args> | string,
    options: WorkflowUpdateOptions & { args?: Args; waitForStage: WorkflowUpdateStage },
  ): Promise<WorkflowUpdateHandle<Ret>> {
    const updateName = typeof update === "string" ? update : update.name;
    const body: wire.UpdateWorkflowRequest = { args: options.args ?? [], wait_for_stage: options.waitForStage };
    if (options.updateId !== undefined) body.update_id = options.updateId;
    if (this.runId) body.run_id = this.runId;
    let outcome: wire.UpdateOutcome;
    try {
      outcome = (await this.call("POST", this.path(`/update/${encodeURIComponent(updateName)}`).replace(/\?.*$/, ""), body)).json as wire.UpdateOutcome;
    } catch (err) {
      if (err instanceof ServiceError && err.code === "update_rejected") {
        throw new WorkflowUpdateFailedError("Workflow Update failed", err.failure ? failureToError(err.failure) : undefined);
      }
      throw err;
    }
    const handle = this.getUpdateHandle<Ret>(outcome.update_id, outcome.run_id);
    handle.settle(outcome);
    if (STAGE_ORDER[outcome.stage] < STAGE_ORDER[options.waitForStage]) await handle.wait(options.waitForStage);
    return handle;
  }

  /** A handle on an update this run admitted, by id. */
  getUpdateHandle<Ret = unknown>(updateId: string, runId?: string): WorkflowUpdateHandle<Ret> {
    return new WorkflowUpdateHandle<Ret>(updateId, this.workflowId, runId ?? this.runId, (stage, rid) =>
      this.call("GET", this.updatePath(updateId, stage, rid)).then((r) => r.json as wire.UpdateOutcome),
    );
  }

  private updatePath(updateId: string, stage: WorkflowUpdateStage, runId: string | undefined): string {
    const q = new URLSearchParams({ wait_for_stage: stage });
    if (runId) q.set("run_id", runId);
    return `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/workflows/${encodeURIComponent(this.workflowId)}/updates/${encodeURIComponent(updateId)}?${q.toString()}`;
  }
}

/** Temporal's `WorkflowUpdateStage`: how far an update got. */
export const WorkflowUpdateStage = { ADMITTED: "ADMITTED", ACCEPTED: "ACCEPTED", COMPLETED: "COMPLETED" } as const;
export type WorkflowUpdateStage = wire.UpdateStage;

const STAGE_ORDER: Record<WorkflowUpdateStage, number> = { ADMITTED: 0, ACCEPTED: 1, COMPLETED: 2 };

export interface WorkflowUpdateOptions {
  /** Identifies the update within the run: a retry with the same id gets the first outcome. */
  updateId?: string;
}

/** The validator rejected the update, or its handler failed; `cause` says why. */
export class WorkflowUpdateFailedError extends Error {
  override readonly name = "WorkflowUpdateFailedError";
  constructor(
    message: string,
    override readonly cause: Error | undefined,
  ) {
    super(message);
  }
}

/** An update that was admitted: wait for its result. */
export class WorkflowUpdateHandle<Ret = unknown> {
  private outcome: wire.UpdateOutcome | undefined;

  constructor(
    readonly updateId: string,
    readonly workflowId: string,
    readonly workflowRunId: string | undefined,
    private readonly poll: (stage: WorkflowUpdateStage, runId: string | undefined) => Promise<wire.UpdateOutcome>,
  ) {}

  /** Records an outcome the caller already has. */
  settle(outcome: wire.UpdateOutcome): void {
    this.outcome = outcome;
  }

  /** Waits (polling the server's bounded wait) until the update reached `stage`. */
  async wait(stage: WorkflowUpdateStage): Promise<void> {
    while (this.outcome === undefined || STAGE_ORDER[this.outcome.stage] < STAGE_ORDER[stage]) {
      this.outcome = await this.poll(stage, this.workflowRunId ?? this.outcome?.run_id);
    }
  }

  /** The handler's result; {@link WorkflowUpdateFailedError} if it failed. */
  async result(): Promise<Ret> {
    await this.wait(WorkflowUpdateStage.COMPLETED);
    const o = this.outcome!;
    if (o.failure !== undefined) throw new WorkflowUpdateFailedError("Workflow Update failed", failureToError(o.failure));
    return o.result as Ret;
  }
}

/** A refused start as Temporal's error, anything else as it came. */
function alreadyStarted(err: unknown, workflowId: string, type: string): unknown {
  return err instanceof ServiceError && err.code === "already_exists" ? new WorkflowExecutionAlreadyStartedError(err.message, workflowId, type) : err;
}

export class WorkflowClient {
  constructor(
    private readonly conn: Connection,
    private readonly namespace: string,
  ) {}

  /** Starts a run; {@link WorkflowExecutionAlreadyStartedError} if the id policies refuse it. */
  async start<R = unknown>(workflow: WorkflowRef, options: WorkflowStartOptions): Promise<WorkflowHandle<R>> {
    const type = typeName(workflow);
    const body: wire.StartWorkflowRequest = startBody(type, options);
    if (options.workflowIdConflictPolicy !== undefined) body.id_conflict_policy = options.workflowIdConflictPolicy;
    const path = `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/workflows/${encodeURIComponent(options.workflowId)}`;
    try {
      const { json } = await this.conn.call("POST", path, body);
      const runId = (json as wire.StartWorkflowResponse).run_id;
      return new WorkflowHandle<R>(this.conn, this.namespace, options.workflowId, undefined, runId);
    } catch (err) {
      throw alreadyStarted(err, options.workflowId, type);
    }
  }

  /**
   * Temporal's `signalWithStart`: signals the workflow id's open run, or
   * starts a run with the signal recorded before its first workflow task
   * (one commit). The handle names no run; `signaledRunId` is the run that
   * got the signal.
   */
  async signalWithStart<R = unknown, SignalArgs extends unknown[] = unknown[]>(
    workflow: WorkflowRef,
    options: Omit<WorkflowStartOptions, "workflowIdConflictPolicy"> & { signal: string | { name: string }; signalArgs?: SignalArgs },
  ): Promise<WorkflowHandle<R> & { readonly signaledRunId: string }> {
    const type = typeName(workflow);
    const signalName = typeof options.signal === "string" ? options.signal : options.signal.name;
    const body: wire.SignalWithStartRequest = { ...startBody(type, options), signal_input: options.signalArgs ?? [] };
    const path = `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/workflows/${encodeURIComponent(options.workflowId)}/signal-with-start/${encodeURIComponent(signalName)}`;
    try {
      const { json } = await this.conn.call("POST", path, body);
      const runId = (json as wire.StartWorkflowResponse).run_id;
      return Object.assign(new WorkflowHandle<R>(this.conn, this.namespace, options.workflowId, undefined, runId), { signaledRunId: runId });
    } catch (err) {
      throw alreadyStarted(err, options.workflowId, type);
    }
  }

  /** Starts a run and waits for its result. */
  async execute<R = unknown>(workflow: WorkflowRef, options: WorkflowStartOptions): Promise<R> {
    return (await this.start<R>(workflow, options)).result();
  }

  getHandle<R = unknown>(workflowId: string, runId?: string): WorkflowHandle<R> {
    return new WorkflowHandle<R>(this.conn, this.namespace, workflowId, runId);
  }

  /**
   * Lists runs. `query` is a list query in Temporal's visibility language
   * over system and custom search attributes (`"CustomerId = 'c-17' ORDER BY
   * StartTime DESC"`), or the REST filters as a record (`workflow_type`,
   * `workflow_id`, `status`, `started_after`, `started_before`).
   */
  async *list(options: { query?: string | Record<string, string>; pageSize?: number } = {}): AsyncIterable<WorkflowExecutionDescription> {
    let token: string | undefined;
    do {
      const q = new URLSearchParams(typeof options.query === "string" ? { query: options.query } : (options.query ?? {}));
      if (options.pageSize) q.set("page_size", String(options.pageSize));
      if (token) q.set("next_page_token", token);
      const { json } = await this.conn.call("GET", `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/workflows?${q.toString()}`);
      const page = json as wire.WorkflowExecutionList;
      for (const e of page.executions) yield describeExecution(e);
      token = page.next_page_token ?? undefined;
    } while (token);
  }
}

/** Completes, fails, cancels or heartbeats an activity by task token (after `CompleteAsyncError`). */
export class AsyncCompletionClient {
  constructor(
    private readonly conn: Connection,
    private readonly namespace: string,
  ) {}

  private path(op: string): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/activities/${op}`;
  }

  async complete(taskToken: string, result?: unknown): Promise<void> {
    const body: wire.CompleteActivityRequest = { task_token: taskToken, result: result === undefined ? null : result };
    await this.conn.call("POST", this.path("complete"), body);
  }

  async fail(taskToken: string, failure: FailureJson | Error): Promise<void> {
    const body: wire.FailActivityRequest = { task_token: taskToken, failure: failure instanceof Error ? { message: failure.message, type: failure.name } : failure };
    await this.conn.call("POST", this.path("fail"), body);
  }

  async reportCancellation(taskToken: string, details?: unknown): Promise<void> {
    const body: wire.ActivityDetailsRequest = { task_token: taskToken, details: details === undefined ? null : details };
    await this.conn.call("POST", this.path("cancel"), body);
  }

  /** Returns whether the workflow asked for the activity to be cancelled. */
  async heartbeat(taskToken: string, details?: unknown): Promise<{ cancelRequested: boolean }> {
    const body: wire.ActivityDetailsRequest = { task_token: taskToken };
    if (details !== undefined) body.details = [details];
    const { json } = await this.conn.call("POST", this.path("heartbeat"), body);
    return { cancelRequested: (json as wire.HeartbeatResponse).cancel_requested };
  }
}

export interface ClientOptions {
  connection?: Connection;
  namespace?: string;
}

export class Client {
  readonly connection: Connection;
  readonly namespace: string;
  readonly workflow: WorkflowClient;
  readonly activity: AsyncCompletionClient;
  /** Schedules: `create`, `getHandle`, `list`. */
  readonly schedule: ScheduleClient;
  /** Batch operations over a list query: `start`, `describe`, `list`, `stop`. */
  readonly batch: BatchClient;
  /** Inbound webhook sources: `create`, `list`, `describe`, `delete`, `deliveries`, `replay`. */
  readonly webhook: WebhookClient;

  constructor(options: ClientOptions = {}) {
    this.connection = options.connection ?? Connection.lazy();
    this.namespace = options.namespace ?? "default";
    this.workflow = new WorkflowClient(this.connection, this.namespace);
    this.activity = new AsyncCompletionClient(this.connection, this.namespace);
    this.schedule = new ScheduleClient(this.connection, this.namespace);
    this.batch = new BatchClient(this.connection, this.namespace);
    this.webhook = new WebhookClient(this.connection, this.namespace);
  }
}
