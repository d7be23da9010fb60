/**
 * Batch operations (`client.batch`): start a durable job that terminates,
 * cancels, signals, resets or deletes every run a list query matches,
 * follow its progress, list jobs and stop one. Named after Temporal's batch
 * API (StartBatchOperation, DescribeBatchOperation's counts), typed from the
 * generated wire types.
 */
import type { Connection } from "./client.js";
import type * as wire from "./generated/openapi.js";

/** Which completed workflow task a reset batch goes back to. */
export const BatchResetType = { FIRST_WORKFLOW_TASK: "FIRST_WORKFLOW_TASK", LAST_WORKFLOW_TASK: "LAST_WORKFLOW_TASK" } as const;
export type BatchResetType = wire.BatchResetType;

/** Where a job is: Temporal's BatchOperationState, plus `STOPPED`. */
export const BatchOperationState = { RUNNING: "RUNNING", COMPLETED: "COMPLETED", FAILED: "FAILED", STOPPED: "STOPPED" } as const;
export type BatchOperationState = wire.BatchState;

/** What a job does to each run. */
export type BatchOperation =
  | { type: "terminate" }
  | { type: "cancel" }
  | { type: "signal"; signal: string | { name: string }; args?: unknown[] }
  | { type: "reset"; resetType: BatchResetType }
  | { type: "delete" };

export interface BatchStartOptions {
  /** A list filter naming the runs, e.g. `WorkflowType = "Order" AND ExecutionStatus = "Running"`. */
  query: string;
  operation: BatchOperation;
  /** Defaults to `requestId`, else a new id. */
  jobId?: string;
  reason?: string;
  /** Runs per second (default 50; the server caps it). */
  rps?: number;
  /** Idempotency key: a retried start returns the job it created. */
  requestId?: string;
  identity?: string;
}

export interface BatchFailure {
  workflowId: string;
  runId: string;
  reason: string;
}

/** A job and its progress. */
export interface BatchDescription {
  jobId: string;
  state: BatchOperationState;
  operation: wire.BatchOperation;
  query: string;
  reason: string;
  /** Runs per second, as capped by the server. */
  rps: number;
  /** Runs the query matched when the job started. */
  totalOperationCount: number;
  /** Runs the operation was applied to. */
  completeOperationCount: number;
  failureOperationCount: number;
  /** The first 20 failures. */
  failures: BatchFailure[];
  stopRequested: boolean;
  startTime: Date;
  closeTime?: Date;
  identity?: string;
}

function fromWire(d: wire.BatchDescription): BatchDescription {
  const out: BatchDescription = {
    jobId: d.batch_id,
    state: d.state,
    operation: d.operation,
    query: d.query,
    reason: d.reason,
    rps: d.rps,
    totalOperationCount: d.total,
    completeOperationCount: d.done,
    failureOperationCount: d.failed,
    failures: d.failures.map((f) => ({ workflowId: f.workflow_id, runId: f.run_id, reason: f.reason })),
    stopRequested: d.stop_requested,
    startTime: new Date(d.created_at),
  };
  if (d.closed_at !== undefined) out.closeTime = new Date(d.closed_at);
  if (d.identity !== undefined) out.identity = d.identity;
  return out;
}

function toWire(options: BatchStartOptions): wire.StartBatchRequest {
  const body: wire.StartBatchRequest = { query: options.query, operation: options.operation.type };
  const op = options.operation;
  if (op.type === "signal") {
    body.signal_name = typeof op.signal === "string" ? op.signal : op.signal.name;
    body.input = op.args ?? [];
  }
  if (op.type === "reset") body.reset_type = op.resetType;
  if (options.jobId !== undefined) body.batch_id = options.jobId;
  if (options.requestId !== undefined) body.request_id = options.requestId;
  if (options.reason !== undefined) body.reason = options.reason;
  if (options.rps !== undefined) body.rps = options.rps;
  if (options.identity !== undefined) body.identity = options.identity;
  return body;
}

/** `client.batch`: start, describe, list and stop batch jobs of the client's namespace. */
export class BatchClient {
  constructor(
    private readonly conn: Connection,
    private readonly namespace: string,
  ) {}

  private path(rest = ""): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/batches${rest}`;
  }

  /**
   * Starts a job applying `operation` to every run `query` matches now, each
   * run once even across server crashes. A {@link ServiceError} (400, naming
   * the field) for a request the server refuses; nothing is stored then.
   */
  async start(options: BatchStartOptions): Promise<BatchDescription> {
    const { json } = await this.conn.call("POST", this.path(), toWire(options));
    return fromWire(json as wire.BatchDescription);
  }

  /** The job and its progress; a {@link ServiceError} (`not_found`) if there is none. */
  async describe(jobId: string): Promise<BatchDescription> {
    const { json } = await this.conn.call("GET", this.path(`/${encodeURIComponent(jobId)}`));
    return fromWire(json as wire.BatchDescription);
  }

  /** The namespace's jobs, newest first. */
  async *list(options: { pageSize?: number } = {}): AsyncIterable<BatchDescription> {
    let token: string | undefined;
    do {
      const q = new URLSearchParams();
      if (options.pageSize) q.set("page_size", String(options.pageSize));
      if (token) q.set("next_page_token", token);
      const { json } = await this.conn.call("GET", `${this.path()}?${q.toString()}`);
      const page = json as wire.BatchList;
      for (const b of page.batches) yield fromWire(b);
      token = page.next_page_token;
    } while (token);
  }

  /** Asks the job to stop before its next run (it ends `STOPPED`); returns it as it is now. */
  async stop(jobId: string): Promise<BatchDescription> {
    const { json } = await this.conn.call("POST", this.path(`/${encodeURIComponent(jobId)}/stop`));
    return fromWire(json as wire.BatchDescription);
  }
}
