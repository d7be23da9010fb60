/**
 * Cancellation scopes (Temporal's `CancellationScope`): a tree of scopes
 * with the workflow function running in the root one. Cancelling a scope
 * cancels the timers, activities, conditions and cancellable child scopes
 * created in it; a non-cancellable scope shields what runs inside it from
 * the cancellation of its parents (the workflow's included).
 *
 * Operations subscribe to their scope with {@link CancellationScope.onCancel};
 * subscribers run synchronously, in subscription order, when the scope is
 * cancelled, so the commands a cancellation produces (CancelTimer,
 * RequestCancelActivityTask) come out in a deterministic order.
 *
 * The current scope follows the workflow code across awaits through
 * AsyncLocalStorage. Where the runtime has none, `run` makes its scope
 * current only until `fn` first awaits.
 */
import { CancelledFailure, type Duration, msToNumber } from "../common.js";
import { newStorage } from "./als.js";

/** What a scope needs from the workflow that runs it (set by the workflow runtime). */
export interface ScopeHost {
  /** The running workflow's root scope. */
  rootScope(): CancellationScope;
  /** A durable timer in the current scope. */
  sleep(ms: number): Promise<void>;
}

let host: ScopeHost | undefined;

/** Called once by the workflow runtime. */
export function setScopeHost(h: ScopeHost): void {
  host = h;
}

function theHost(): ScopeHost {
  if (host === undefined) throw new Error("CancellationScope used before the workflow runtime was loaded");
  return host;
}

export interface CancellationScopeOptions {
  /** Cancel the scope automatically after this long (a durable timer). */
  timeout?: Duration;
  /** False: cancellation of a parent does not reach this scope's operations (default true). */
  cancellable?: boolean;
  /** The parent scope; by default {@link CancellationScope.current}. */
  parent?: CancellationScope;
}

const NO_PARENT = Symbol("root scope");

const storage = newStorage<CancellationScope>();
let fallback: CancellationScope | undefined;

export class CancellationScope {
  /** False for a non-cancellable scope: it never counts as cancelled, and shields its children. */
  readonly cancellable: boolean;
  readonly parent: CancellationScope | undefined;
  /** Rejects with the {@link CancelledFailure} when the scope receives a cancellation request. */
  readonly cancelRequested: Promise<never>;
  private readonly timeoutMs: number | undefined;
  private requested: CancelledFailure | undefined;
  private readonly rejectRequested: (err: CancelledFailure) => void;
  private subscribers: ((err: CancelledFailure) => void)[] = [];

  constructor(options?: CancellationScopeOptions | typeof NO_PARENT) {
    const opts = options === NO_PARENT ? {} : (options ?? {});
    this.cancellable = opts.cancellable ?? true;
    this.timeoutMs = opts.timeout === undefined ? undefined : msToNumber(opts.timeout);
    let reject!: (err: CancelledFailure) => void;
    this.cancelRequested = new Promise<never>((_, rej) => {
      reject = rej;
    });
    this.cancelRequested.catch(() => undefined);
    this.rejectRequested = reject;
    if (options === NO_PARENT) {
      this.parent = undefined;
      return;
    }
    const parent = opts.parent ?? CancellationScope.current();
    this.parent = parent;
    // A non-cancellable parent shields its children (Temporal's
    // NonCancellableScopesAreShieldedFromPropagation behaviour).
    parent.onCancel((err) => this.receive(err));
  }

  /** The root scope of a run; cancelled when the run is asked to cancel. */
  static root(): CancellationScope {
    return new CancellationScope(NO_PARENT);
  }

  /** True once a cancellable scope received a cancellation request (directly or from a parent). */
  get consideredCancelled(): boolean {
    return this.requested !== undefined && this.cancellable;
  }

  /** Runs `fn` with this scope current: the timers, activities and scopes it creates belong to it. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (storage !== undefined) return storage.run(this, () => this.runInContext(fn));
    const prev = fallback;
    fallback = this;
    try {
      return this.runInContext(fn);
    } finally {
      fallback = prev;
    }
  }

  private async runInContext<T>(fn: () => Promise<T>): Promise<T> {
    let timerScope: CancellationScope | undefined;
    if (this.timeoutMs !== undefined && this.timeoutMs > 0) {
      const ms = this.timeoutMs;
      timerScope = new CancellationScope({ parent: this });
      timerScope.run(() => theHost().sleep(ms)).then(
        () => this.cancel(),
        () => undefined, // the scope ended (or was cancelled) first
      );
    }
    try {
      return await fn();
    } finally {
      // The timeout's timer is not needed once `fn` settled.
      if (timerScope !== undefined && !timerScope.consideredCancelled) timerScope.cancel();
    }
  }

  /** Requests cancellation of the scope and what was created in it. */
  cancel(): void {
    this.receive(new CancelledFailure("Cancellation scope cancelled"));
  }

  /** Delivers a cancellation request (from `cancel()`, a parent, or the run's cancellation). */
  receive(err: CancelledFailure): void {
    if (this.requested !== undefined) return;
    this.requested = err;
    this.rejectRequested(err);
    if (!this.cancellable) return;
    const subscribers = this.subscribers;
    this.subscribers = [];
    for (const s of subscribers) s(err);
  }

  /**
   * Calls `fn` when the scope is cancelled, at once if it already is. A
   * non-cancellable scope never calls it.
   */
  onCancel(fn: (err: CancelledFailure) => void): void {
    if (!this.cancellable) return;
    if (this.requested !== undefined) fn(this.requested);
    else this.subscribers.push(fn);
  }

  /** The scope the calling workflow code runs in. */
  static current(): CancellationScope {
    return (storage !== undefined ? storage.getStore() : fallback) ?? theHost().rootScope();
  }

  /** `new CancellationScope({ cancellable: true }).run(fn)`. */
  static cancellable<T>(fn: () => Promise<T>): Promise<T> {
    return new CancellationScope({ cancellable: true }).run(fn);
  }

  /** `new CancellationScope({ cancellable: false }).run(fn)`: cleanup that must run even when the workflow is cancelled. */
  static nonCancellable<T>(fn: () => Promise<T>): Promise<T> {
    return new CancellationScope({ cancellable: false }).run(fn);
  }

  /** `new CancellationScope({ cancellable: true, timeout }).run(fn)`: cancelled if `fn` takes longer than `timeout`. */
  static withTimeout<T>(timeout: Duration, fn: () => Promise<T>): Promise<T> {
    return new CancellationScope({ cancellable: true, timeout }).run(fn);
  }
}
