/**
 * Runs local activities' attempts in the handler (protocol.md §14.6): one
 * attempt after another, in-process, while the retry policy's back-off is
 * at most the local retry threshold; the outcome (a result, a final failure
 * with its retry state, or a failure with the back-off to wait on a durable
 * timer) is what the workflow's LocalActivity marker records.
 *
 * Attempts outlive the workflow task that started them: a task that answered
 * early (a workflow-task heartbeat) leaves them running here, keyed by run,
 * activity id and first attempt, for the run's next task to pick up.
 */

import { Context, runInContext } from "../activity.js";
import { ApplicationFailure, type Duration, type FailureJson, TimeoutFailure, type WorkflowTaskRequest, errorToFailure, formatDuration, msToNumber } from "../common.js";
import type { LocalActivityRunner, LocalActivityState } from "./workflow_instance.js";

type AnyFunction = (...args: any[]) => any;

const DEFAULT_LOCAL_RETRY_THRESHOLD_MS = 60_000;
/** How long an outcome nobody came back for (the next task went elsewhere) is kept. */
const ORPHAN_TTL_MS = 120_000;

interface Running {
  outcome: Promise<Record<string, unknown>>;
  cancel(): void;
}

const running = new Map<string, Running>();

function key(request: WorkflowTaskRequest, la: LocalActivityState): string {
  return `${request.run_id}/${la.activityId}/${la.attempt}`;
}

/** The runner for a handler's activity functions. */
export function localActivityRunner(activities: Map<string, AnyFunction>): LocalActivityRunner {
  return {
    run(la, request) {
      const k = key(request, la);
      let r = running.get(k);
      if (r === undefined) {
        r = start(la, request, activities);
        running.set(k, r);
        const mine = r;
        void r.outcome.then(() => {
          const t = setTimeout(() => {
            if (running.get(k) === mine) running.delete(k);
          }, ORPHAN_TTL_MS);
          (t as { unref?: () => void }).unref?.();
        });
      }
      const taken = r;
      return taken.outcome.then((o) => {
        if (running.get(k) === taken) running.delete(k);
        return o;
      });
    },
    cancel(la, request) {
      const k = key(request, la);
      running.get(k)?.cancel();
      running.delete(k);
    },
  };
}

function start(la: LocalActivityState, request: WorkflowTaskRequest, activities: Map<string, AnyFunction>): Running {
  let current: Context | undefined;
  let cancelled = false;
  let wake: (() => void) | undefined;
  const outcome = (async (): Promise<Record<string, unknown>> => {
    const scheduled = la.originalScheduleTime !== undefined ? Date.parse(la.originalScheduleTime) : Date.now();
    const base = { original_schedule_time: new Date(scheduled).toISOString() };
    for (let attempt = la.attempt; ; attempt++) {
      let failure: FailureJson;
      let retry: number | string;
      try {
        const result = await runAttempt(la, attempt, scheduled, request, activities, (ctx) => (current = ctx));
        return { ...base, attempt, complete_time: new Date().toISOString(), result: result === undefined ? null : result };
      } catch (err) {
        failure = errorToFailure(err);
        retry = cancelled ? "CANCEL_REQUESTED" : nextRetry(la, err, attempt, scheduled);
      }
      const out = { ...base, attempt, complete_time: new Date().toISOString(), failure };
      if (typeof retry === "string") return { ...out, retry_state: retry };
      if (retry > msToNumber(la.options.localRetryThreshold ?? DEFAULT_LOCAL_RETRY_THRESHOLD_MS)) return { ...out, backoff: formatDuration(retry) };
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, retry as number);
      });
      if (cancelled) return { ...out, retry_state: "CANCEL_REQUESTED" };
    }
  })();
  return {
    outcome,
    cancel() {
      cancelled = true;
      current?.abort(new ApplicationFailure("local activity cancelled", "CancelledError"));
      wake?.();
    },
  };
}

/** The back-off before the next attempt in ms, or the retry state that ends the activity (protocol.md §7.1). */
function nextRetry(la: LocalActivityState, err: unknown, attempt: number, scheduled: number): number | string {
  const p = la.options.retry ?? {};
  if (err instanceof ApplicationFailure && err.nonRetryable) return "NON_RETRYABLE_FAILURE";
  const type = err instanceof ApplicationFailure ? err.type : err instanceof Error ? err.name : "Error";
  if (type !== undefined && (p.nonRetryableErrorTypes ?? []).includes(type)) return "NON_RETRYABLE_FAILURE";
  if (p.maximumAttempts !== undefined && p.maximumAttempts > 0 && attempt >= p.maximumAttempts) return "MAXIMUM_ATTEMPTS_REACHED";
  const initial = msToNumber(p.initialInterval ?? 1000);
  const maximum = p.maximumInterval !== undefined ? msToNumber(p.maximumInterval) : initial * 100;
  const delay = Math.min(initial * Math.pow(p.backoffCoefficient ?? 2, attempt - 1), maximum);
  const s2c = la.options.scheduleToCloseTimeout;
  if (s2c !== undefined && Date.now() + delay >= scheduled + msToNumber(s2c)) return "TIMEOUT";
  return delay;
}

async function runAttempt(
  la: LocalActivityState,
  attempt: number,
  scheduled: number,
  request: WorkflowTaskRequest,
  activities: Map<string, AnyFunction>,
  onContext: (ctx: Context) => void,
): Promise<unknown> {
  const fn = activities.get(la.activityType);
  if (fn === undefined) {
    throw ApplicationFailure.create({
      message: `local activity type ${JSON.stringify(la.activityType)} is not registered with this handler: a local activity runs in the handler that runs its workflow`,
      type: "NotFoundError",
    });
  }
  const started = Date.now();
  const limits: Duration[] = [];
  if (la.options.startToCloseTimeout !== undefined) limits.push(la.options.startToCloseTimeout);
  if (la.options.scheduleToCloseTimeout !== undefined) limits.push(scheduled + msToNumber(la.options.scheduleToCloseTimeout) - started);
  const timeout = limits.length > 0 ? Math.min(...limits.map(msToNumber)) : undefined;
  const ctx = new Context(
    {
      activityId: la.activityId,
      activityType: la.activityType,
      taskQueue: request.task_queue,
      attempt,
      heartbeatDetails: undefined,
      idempotencyKey: `${request.run_id}/${la.activityId}`,
      taskToken: "",
      workflowNamespace: request.namespace,
      workflowType: request.workflow_type,
      workflowExecution: { workflowId: request.workflow_id, runId: request.run_id },
      scheduledTimestampMs: scheduled,
      startedTimestampMs: started,
      deadlineMs: timeout !== undefined ? started + timeout : Number.MAX_SAFE_INTEGER,
      isLocal: true,
      isInline: false,
    },
    undefined,
  );
  onContext(ctx);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const run = Promise.resolve(runInContext(ctx, () => fn(...la.args)));
    const deadline = new Promise<never>((_, reject) => {
      if (timeout === undefined) return;
      timer = setTimeout(() => {
        const err = new TimeoutFailure("local activity timed out", "START_TO_CLOSE");
        ctx.abort(err);
        reject(err);
      }, Math.max(0, timeout));
    });
    return await Promise.race([run, deadline, ctx.cancelled]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    ctx.dispose();
  }
}
