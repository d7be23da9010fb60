/**
 * Inline activities: a workflow task that runs its own activities
 * (protocol.md §5.9).
 *
 * When a workflow task's answer schedules activities this handler serves
 * (on the run's task queue, not opted out with `inline: false`) and the
 * push carries `checkpoint_url`, {@link runSession} sends the answer as a
 * signed *checkpoint* naming those activities `inline`; the server records
 * them as scheduled and started and hands back their attempt tokens. The
 * attempts run here, at most `maxInlineAttempts` at once in the handler.
 * As results arrive they are fed to the same {@link WorkflowInstance} (no
 * replay), the workflow runs on at `workflow_time`, and the next checkpoint
 * carries the results and the new commands, one checkpoint in flight at a
 * time. The push is then answered `{"checkpointed": true}`.
 *
 * The session stops continuing when the server answers `continued: false`
 * (a signal came in, a result was refused…), when an attempt fails or is
 * cancelled (the server's retry policy decides what comes next), when the
 * workflow waits on a local activity, or when the workflow code fails; it
 * stops starting attempts when less than max(1 s, 20 % of the push's
 * budget) is left before the push's `deadline` (or the platform's own).
 * Attempts still running then are reported by completions-only checkpoints
 * from the background, or abandoned in a serverless function (the server
 * retries them after their start-to-close timeout).
 */
import type { Info } from "../activity.js";
import { type CheckpointedAnswer, type HistoryEvent, type WorkflowTaskRequest, type WorkflowTaskResponse, msToNumber } from "../common.js";
import type * as wire from "../generated/openapi.js";
import { onBase, postSigned } from "./signing.js";
import type { WorkflowInstance } from "./workflow_instance.js";

type AnyFunction = (...args: any[]) => any;

/**
 * As many as an endpoint takes pushes at once by default (its
 * `max_concurrency`, 100): an attempt past the bound is pushed, to run in
 * this same handler after two more round trips, so a lower bound mostly
 * adds pushes.
 */
export const DEFAULT_MAX_INLINE_ATTEMPTS = 100;
/** Inlining stops this long before the push's deadline: max(MIN_MARGIN_MS, MARGIN_FRACTION × the push's budget). */
const MIN_MARGIN_MS = 1000;
const MARGIN_FRACTION = 0.2;
/** Without a `deadline` in the push (older servers do not inline anyway), the budget is the task timeout's default. */
const DEFAULT_BUDGET_MS = 10_000;
const CHECKPOINTED: CheckpointedAnswer = { checkpointed: true };

/** An attempt's answer, or `"async"`: it completes later over REST. */
export type AttemptOutcome = wire.ActivityTaskResponse | "async";

/** How many more inline attempts the handler may run now (all sessions). */
export class Slots {
  constructor(private free: number) {}

  take(wanted: number): number {
    const n = Math.max(0, Math.min(wanted, this.free));
    this.free -= n;
    return n;
  }

  give(): void {
    this.free++;
  }
}

/** What a handler gives its sessions. */
export interface InlineConfig {
  secrets: readonly string[];
  activities: Map<string, AnyFunction>;
  slots: Slots;
  runAttempt(fn: AnyFunction, args: unknown[], info: Info): Promise<AttemptOutcome>;
  identity?: string;
  checkpointBaseUrl?: string;
  /**
   * Puts in place the references (protocol.md §9.1) at the read positions
   * of a checkpoint answer's `events`, from its `payloads` or fetched; the
   * instance matches them to its commands (a LocalActivity marker's
   * `details` among them).
   */
  resolveEvents(request: WorkflowTaskRequest, events: HistoryEvent[], payloads: unknown, deadlineMs: number): Promise<unknown>;
}

interface Running {
  activityId: string;
  taskToken: string;
  done: boolean;
  outcome: Promise<AttemptOutcome>;
}

/** The push's `checkpoint_url`, on `checkpointBaseUrl` when the handler has one. */
function checkpointUrl(request: WorkflowTaskRequest, base: string | undefined): string {
  return onBase(String(request.checkpoint_url), base);
}

/** Sends one signed checkpoint (protocol.md §5.9). */
function postCheckpoint(url: string, secrets: readonly string[], body: wire.WorkflowTaskCheckpointRequest, deadlineMs?: number): Promise<wire.WorkflowTaskCheckpointResponse> {
  return postSigned<wire.WorkflowTaskCheckpointResponse>("checkpoint", url, secrets, body, deadlineMs);
}

/**
 * Runs a workflow task's session: `answer` is the task's answer, made by
 * `instance`. Returns what the push is to be answered: `answer` itself when
 * nothing ran inline, else `{"checkpointed": true}`.
 */
export async function runSession(
  instance: WorkflowInstance,
  request: WorkflowTaskRequest,
  answer: WorkflowTaskResponse,
  config: InlineConfig,
  receivedMs: number,
  platform: { deadlineMs?: number; serverless?: boolean },
): Promise<WorkflowTaskResponse | CheckpointedAnswer> {
  if (!("commands" in answer) || answer.force_create_new_workflow_task === true) return answer;
  const pushDeadline = request.deadline !== undefined ? Date.parse(request.deadline) : receivedMs + DEFAULT_BUDGET_MS;
  const end = Math.min(pushDeadline, platform.deadlineMs ?? Infinity);
  const stopAt = end - Math.max(MIN_MARGIN_MS, MARGIN_FRACTION * (end - receivedMs));
  const registered = (t: string): boolean => config.activities.has(t);
  const url = checkpointUrl(request, config.checkpointBaseUrl);
  const identity = config.identity !== undefined ? { identity: config.identity } : {};

  /** The attempts to name `inline` among the answer's candidates, as slots and the deadline allow. */
  const choose = (): wire.ScheduleActivityTaskAttributes[] => {
    if (Date.now() >= stopAt) return [];
    const candidates = instance.inlineCandidates(registered);
    return candidates.slice(0, config.slots.take(candidates.length));
  };
  const giveBack = (n: number): void => {
    for (let i = 0; i < n; i++) config.slots.give();
  };

  const first = choose();
  if (first.length === 0) return answer;
  let reply: wire.WorkflowTaskCheckpointResponse;
  try {
    reply = await postCheckpoint(url, config.secrets, {
      task_token: request.task_token,
      commands: answer.commands,
      inline: first.map((a) => a.activity_id),
      workflow_time: new Date(instance.nowMs).toISOString(),
      ...identity,
    }, end);
  } catch (err) {
    // Nothing was applied that the answer would not apply: answer the push as usual.
    giveBack(first.length);
    console.warn("[baton.inline] the first checkpoint failed; answering the push instead", String(err));
    return answer;
  }
  if (!reply.continued || reply.continuation_token === undefined) {
    giveBack(first.length);
    return CHECKPOINTED;
  }

  const running = new Map<string, Running>();
  let token = reply.continuation_token;
  let serverMs = Date.parse(reply.server_time);
  let arrivedMono = performance.now();
  const workflowTime = (): number => Math.floor(serverMs + (performance.now() - arrivedMono));

  /** Starts the attempts a checkpoint handed back; `scheduled` are the commands they run. */
  const start = (tasks: wire.WorkflowTaskCheckpointResponse["activity_tasks"], scheduled: wire.ScheduleActivityTaskAttributes[]): void => {
    // The slots taken for `scheduled` go back now; each attempt started takes one again (synchronously: nobody comes in between).
    giveBack(scheduled.length);
    for (const t of tasks ?? []) {
      const attrs = scheduled.find((a) => a.activity_id === t.activity_id);
      const fn = attrs !== undefined ? config.activities.get(attrs.activity_type) : undefined;
      if (attrs === undefined || fn === undefined) continue;
      config.slots.take(1);
      const startedMs = Date.now();
      const limits: number[] = [];
      if (typeof attrs.start_to_close_timeout === "string") limits.push(msToNumber(attrs.start_to_close_timeout));
      if (typeof attrs.schedule_to_close_timeout === "string") limits.push(msToNumber(attrs.schedule_to_close_timeout));
      const info: Info = {
        activityId: t.activity_id,
        activityType: attrs.activity_type,
        taskQueue: request.task_queue,
        attempt: t.attempt,
        heartbeatDetails: undefined,
        idempotencyKey: `${request.run_id}/${t.activity_id}`,
        taskToken: t.task_token,
        workflowNamespace: request.namespace,
        workflowType: request.workflow_type,
        workflowExecution: { workflowId: request.workflow_id, runId: request.run_id },
        scheduledTimestampMs: serverMs,
        startedTimestampMs: startedMs,
        deadlineMs: limits.length > 0 ? startedMs + Math.min(...limits) : Number.MAX_SAFE_INTEGER,
        ...(typeof attrs.heartbeat_timeout === "string" ? { heartbeatTimeoutMs: msToNumber(attrs.heartbeat_timeout) } : {}),
        isLocal: false,
        isInline: true,
      };
      const r: Running = { activityId: t.activity_id, taskToken: t.task_token, done: false, outcome: Promise.resolve("async") };
      r.outcome = config
        .runAttempt(fn, Array.isArray(attrs.input) ? attrs.input : [attrs.input], info)
        .finally(() => {
          r.done = true;
          config.slots.give();
        });
      running.set(t.task_token, r);
    }
  };

  /** A checkpoint answer's events, their references put in place. */
  const eventsOf = async (r: wire.WorkflowTaskCheckpointResponse): Promise<HistoryEvent[]> => {
    const events = (r.events ?? []) as HistoryEvent[];
    await config.resolveEvents(request, events, r.payloads, end);
    return events;
  };

  try {
    // The attempts first: committed as started, they run (and are reported) whatever comes next.
    start(reply.activity_tasks, first);
    instance.checkpointed(await eventsOf(reply));
    for (;;) {
      if (running.size === 0) break;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<"timeout">((r) => {
        timer = setTimeout(() => r("timeout"), Math.max(0, stopAt - Date.now()));
      });
      const won = await Promise.race([...[...running.values()].map((r) => r.outcome.then(() => "result" as const)), timeout]);
      clearTimeout(timer);
      if (won === "timeout") break;
      // Every attempt that has finished by now goes into this checkpoint.
      await Promise.resolve();
      const finished = [...running.values()].filter((r) => r.done);
      const completions: wire.CheckpointCompletion[] = [];
      const results: { activityId: string; result: unknown }[] = [];
      let failed = false;
      for (const r of finished) {
        running.delete(r.taskToken);
        const o = await r.outcome;
        if (o === "async") continue;
        if ("result" in o) {
          completions.push({ task_token: r.taskToken, result: o.result });
          results.push({ activityId: r.activityId, result: o.result });
        } else if ("failure" in o) {
          completions.push({ task_token: r.taskToken, failure: o.failure });
          failed = true;
        } else {
          completions.push({ task_token: r.taskToken, canceled: o.canceled });
          failed = true;
        }
      }
      if (completions.length === 0) continue;
      // A failure goes through the server's retry policy: the workflow does
      // not see it now, so the session ends with the outcomes reported alone.
      let next: WorkflowTaskResponse | undefined;
      // workflow.now() for the code run after these results, and the checkpoint's workflow_time.
      const now = workflowTime();
      if (!failed) {
        try {
          next = await instance.resume(results, now);
          if (instance.waitsOnLocalActivity) next = undefined;
        } catch {
          next = undefined; // the pushed task that follows replays and reports it
        }
      }
      if (next === undefined || !("commands" in next)) {
        await postCheckpoint(url, config.secrets, { task_token: token, completions, ...identity }, end);
        break;
      }
      const scheduled = choose();
      reply = await postCheckpoint(url, config.secrets, {
        task_token: token,
        completions,
        commands: next.commands,
        inline: scheduled.map((a) => a.activity_id),
        workflow_time: new Date(now).toISOString(),
        ...identity,
      }, end);
      if (!reply.continued || reply.continuation_token === undefined) {
        giveBack(scheduled.length);
        break;
      }
      token = reply.continuation_token;
      serverMs = Date.parse(reply.server_time);
      arrivedMono = performance.now();
      start(reply.activity_tasks, scheduled);
      instance.checkpointed(await eventsOf(reply));
    }
  } catch (err) {
    // The server has what the checkpoints committed; the rest goes on in pushed tasks.
    console.warn("[baton.inline] the session ended early", String(err));
  }
  if (!platform.serverless) for (const r of running.values()) reportLater(r, url, config, token, identity);
  return CHECKPOINTED;
}

/** Reports an attempt that outlived its session with a completions-only checkpoint. */
function reportLater(r: Running, url: string, config: InlineConfig, token: string, identity: { identity?: string }): void {
  void r.outcome
    .then(async (o) => {
      if (o === "async") return;
      const completion: wire.CheckpointCompletion =
        "result" in o ? { task_token: r.taskToken, result: o.result } : "failure" in o ? { task_token: r.taskToken, failure: o.failure } : { task_token: r.taskToken, canceled: o.canceled };
      await postCheckpoint(url, config.secrets, { task_token: token, completions: [completion], ...identity });
    })
    .catch((err: unknown) => console.warn("[baton.inline] reporting an inline attempt failed; the server retries it after its timeout", String(err)));
}
