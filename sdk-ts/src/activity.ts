/**
 * The activity API (`@baton/sdk/activity`, mirroring `@temporalio/activity`).
 * Activities are plain async functions; inside one, `Context.current()`
 * describes the attempt.
 */
import { CancelledFailure, type Duration, msToNumber } from "./common.js";
import { newStorage } from "./core/als.js";

export { ApplicationFailure, CancelledFailure } from "./common.js";

export interface Info {
  activityId: string;
  activityType: string;
  taskQueue: string;
  /** 1-based attempt number. */
  attempt: number;
  /** The details of the last heartbeat of an earlier attempt, if any: resume from there. */
  heartbeatDetails: unknown;
  /** `"<run id>/<activity id>"`: the same for every attempt and redelivery. */
  idempotencyKey: string;
  /** Opaque; completes the activity later with `Client.activity.complete` after {@link CompleteAsyncError}. */
  taskToken: string;
  workflowNamespace: string;
  workflowType: string;
  workflowExecution: { workflowId: string; runId: string };
  scheduledTimestampMs: number;
  startedTimestampMs: number;
  /** When this attempt times out (ms since the epoch). */
  deadlineMs: number;
  heartbeatTimeoutMs?: number;
  /** True for a local activity (run inside its workflow task, `proxyLocalActivities`). */
  isLocal: boolean;
  /** True for an attempt its workflow task runs inline, in this handler (protocol.md §5.9). */
  isInline: boolean;
}

/** Throw it from an activity to answer the push `202`: the result comes later over REST. */
export class CompleteAsyncError extends Error {
  override readonly name = "CompleteAsyncError";
  constructor() {
    super("activity will complete asynchronously");
  }
}

export type HeartbeatSender = (details: unknown) => Promise<{ cancelRequested: boolean; gone: boolean }>;

export class Context {
  private readonly controller = new AbortController();
  readonly cancelled: Promise<never>;
  private pending: { details: unknown } | undefined;
  private sending = false;
  private inflight: Promise<void> | undefined;
  private lastSent = -Infinity;
  private readonly throttleMs: number;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private warned = false;
  private workflowCancelled = false;

  constructor(
    public readonly info: Info,
    private readonly sender: HeartbeatSender | undefined,
  ) {
    this.cancelled = new Promise<never>((_, reject) => {
      this.controller.signal.addEventListener("abort", () => reject(this.controller.signal.reason));
    });
    this.cancelled.catch(() => undefined);
    this.throttleMs = info.heartbeatTimeoutMs !== undefined ? Math.min(info.heartbeatTimeoutMs * 0.8, 60_000) : 30_000;
  }

  /** The context of the activity attempt that is running. */
  static current(): Context {
    const ctx = storage?.getStore() ?? fallback;
    if (ctx === undefined) throw new Error("Context.current() called outside an activity");
    return ctx;
  }

  /** Aborted when the workflow asked for cancellation (learnt from a heartbeat) or the attempt is over. */
  get cancellationSignal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * Records progress: resets the heartbeat timeout and keeps `details` for
   * the next attempt. Sent over REST at most once per throttle interval
   * (0.8 × heartbeat timeout, at most 60 s; 30 s without one); the latest
   * details win.
   */
  heartbeat(details?: unknown): void {
    if (this.sender === undefined) {
      if (!this.warned) {
        this.warned = true;
        console.warn("[baton.activity] heartbeat() called but the handler has no serverUrl; details are dropped");
      }
      return;
    }
    this.pending = { details };
    this.schedule();
  }

  /** Sends a pending heartbeat now (the handler calls it when the attempt ends). */
  async flush(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.inflight !== undefined) await this.inflight;
    if (this.pending !== undefined) await this.send();
  }

  private schedule(): void {
    if (this.sending || this.timer !== undefined) return;
    const wait = Math.max(0, this.lastSent + this.throttleMs - Date.now());
    if (wait === 0) {
      this.inflight = this.send();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.inflight = this.send();
    }, wait);
  }

  private async send(): Promise<void> {
    const p = this.pending;
    if (p === undefined || this.sender === undefined) return;
    this.pending = undefined;
    this.sending = true;
    this.lastSent = Date.now();
    try {
      const r = await this.sender(p.details);
      if (r.cancelRequested) {
        this.workflowCancelled = true;
        this.abort(new CancelledFailure("activity cancellation requested"));
      }
      else if (r.gone) this.abort(new CancelledFailure("activity attempt is over (heartbeat refused)"));
    } catch (err) {
      console.warn("[baton.activity] heartbeat failed", err);
    } finally {
      this.sending = false;
      this.inflight = undefined;
      if (this.pending !== undefined) this.schedule();
    }
  }

  /** True once a heartbeat answer said the workflow asked to cancel this activity. */
  get cancellationRequested(): boolean {
    return this.workflowCancelled;
  }

  /** Ends the attempt's background work. */
  dispose(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  abort(reason: Error): void {
    if (!this.controller.signal.aborted) this.controller.abort(reason);
  }

  /** Sleeps, but wakes with the cancellation error if the activity is cancelled. */
  sleep(ms: Duration): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, msToNumber(ms));
      this.controller.signal.addEventListener("abort", () => {
        clearTimeout(t);
        reject(this.controller.signal.reason);
      });
    });
  }
}

// AsyncLocalStorage where the runtime has it (Node, Deno, Bun, Workers with
// nodejs_compat); elsewhere the context is only visible until the first await.
const storage = newStorage<Context>();
let fallback: Context | undefined;

/** Runs `fn` with `ctx` as {@link Context.current}. */
export function runInContext<R>(ctx: Context, fn: () => R): R {
  if (storage !== undefined) return storage.run(ctx, fn);
  const prev = fallback;
  fallback = ctx;
  try {
    return fn();
  } finally {
    fallback = prev;
  }
}

/** Shorthand for `Context.current().heartbeat(details)`. */
export function heartbeat(details?: unknown): void {
  Context.current().heartbeat(details);
}

/** Shorthand for `Context.current().cancellationSignal`. */
export function cancellationSignal(): AbortSignal {
  return Context.current().cancellationSignal;
}

/** Shorthand for `Context.current().info`. */
export function activityInfo(): Info {
  return Context.current().info;
}

/** Shorthand for `Context.current().sleep(ms)`. */
export function sleep(ms: Duration): Promise<void> {
  return Context.current().sleep(ms);
}
