/**
 * `createHandler`: one fetch-API handler `(req: Request) => Promise<Response>`
 * serving workflow and activity pushes (protocol.md §1, §5, §6).
 *
 * The work is done by a {@link PushHandler} on plain values (method, header
 * lookup, body bytes → status and JSON text); the fetch handler wraps it, and
 * carries it under {@link PUSH_HANDLER} so the Node and Lambda adapters call
 * it directly instead of building a Request and reading a Response per push.
 *
 * A push that carries only its newest events is paged in before it is
 * replayed (protocol.md §5.10). Where the platform is long-lived (the Node
 * adapter), a workflow instance whose task was answered with commands is
 * kept in the sticky cache and the answer says `sticky: true`; the run's
 * next task, sent only the new events, goes on in that instance.
 *
 * Payloads stored by reference (protocol.md §9.1) are put in place before
 * any code sees them: those of the events replay reads once the history is
 * whole (or the new events of a sticky push, or a checkpoint's answer), an
 * activity push's `input` and `heartbeat_details`; from the push's
 * `payloads`, the rest fetched from the signed payload route.
 */
import { CompleteAsyncError, Context, type HeartbeatSender, type Info, runInContext } from "../activity.js";
import {
  type ActivityTaskRequest,
  CancelledFailure,
  type QueryRequest,
  TimeoutFailure,
  type UpdateValidationRequest,
  type WorkflowTaskRequest,
  type WorkflowTaskResponse,
  type CheckpointedAnswer,
  type FailureJson,
  argsFromPayload,
  errorToFailure,
  msToNumber,
} from "../common.js";
import { type WorkflowFunction, WorkflowInstance, handleQuery, handleUpdateValidation } from "./workflow_instance.js";
import { type PageConfig, isPartial, withWholeHistory } from "./history.js";
import { type AttemptOutcome, DEFAULT_MAX_INLINE_ATTEMPTS, type InlineConfig, Slots, runSession } from "./inline.js";
import { ACTIVITY_POSITIONS, type FetchPayloads, PAYLOAD_REFERENCES, type Position, payloadsUrlBeside, payloadsUrlOn, resolveEvents, resolvePositions, signedFetcher } from "./payloads.js";
import { localActivityRunner } from "./local_activity.js";
import type * as wire from "../generated/openapi.js";
import { describeSchemas, handlerNames } from "./schema.js";
import { httpCall } from "./http.js";
import { onBase, verify } from "./signing.js";
import { DEFAULT_MAX_CACHED_WORKFLOWS, type HandlerStats, WorkflowCache } from "./sticky.js";
import { continueTrace } from "./tracing.js";

export type { HandlerStats };

export const SDK_NAME = "baton-sdk-ts";
export const SDK_VERSION = "0.1.0";

type AnyFunction = (...args: any[]) => any;

const decoder = new TextDecoder();

export interface HandlerOptions {
  /** Workflow functions by type name, e.g. `import * as workflows from './workflows'`. */
  workflows?: Record<string, unknown>;
  /** Activity functions by type name. */
  activities?: Record<string, unknown>;
  /** The endpoint's signing secret(s), `whsec_...`; several during a rotation. */
  signingSecret: string | string[];
  /** The server's REST API, for heartbeats (e.g. `http://127.0.0.1:7233`). */
  serverUrl?: string;
  /** Bearer key for the REST API, if the server has one. */
  apiKey?: string;
  /** Recorded in WorkflowTaskCompleted. */
  identity?: string;
  /**
   * Run the activities this handler serves inline, inside the workflow task
   * that schedules them, committing each step by a checkpoint (protocol.md
   * §5.9). Default true; `inline: false` in activity options opts one call out.
   */
  inlineActivities?: boolean;
  /** At most this many inline attempts run at once in this handler (default 100, an endpoint's default `max_concurrency`); beyond, activities are pushed as usual. */
  maxInlineAttempts?: number;
  /**
   * Replaces the base (scheme, host, port) of the push's `checkpoint_url`
   * and `history_url`, when this handler reaches the server under another
   * address, and of an activity push's `payloads_url` (an older server's
   * activity push names none: it fetches the payloads it refers to but
   * does not carry, protocol.md §9.1, from this base, else from
   * `serverUrl`).
   */
  checkpointBaseUrl?: string;
  /**
   * Where the handler is long-lived (under `toNodeListener`), it keeps up
   * to this many workflow instances after answering their tasks, least
   * recently used first out, and answers `sticky: true`: the run's next
   * task then carries only the new events and goes on in the same
   * instance, without a replay (protocol.md §5.10). Default 1000; 0 turns
   * sticky answers off.
   */
  maxCachedWorkflows?: number;
}

/** What the platform running the handler says about a push: its own time limit, and whether work may go on after the answer. */
export interface Platform {
  /** When the platform ends the invocation (ms since the epoch), e.g. Lambda's remaining time. */
  deadlineMs?: number;
  /** True where nothing runs after the answer (a serverless function): inline attempts still running are abandoned. */
  serverless?: boolean;
  /** True where the process serves the run's next pushes too (a Node server): workflow instances are kept for sticky pushes. */
  longLived?: boolean;
}

/** A push's answer: its status and JSON body (none for a `202`). */
export interface PushAnswer {
  status: number;
  body: string | null;
}

/** The handler on plain values: what the adapters call. */
export type PushHandler = (method: string, headers: { get(name: string): string | null }, body: Uint8Array, platform?: Platform) => Promise<PushAnswer>;

/** Where a fetch handler made by {@link createHandler} keeps its {@link PushHandler}. */
export const PUSH_HANDLER: unique symbol = Symbol.for("baton.pushHandler");

export type FetchHandler = ((req: Request) => Promise<Response>) & { [PUSH_HANDLER]?: PushHandler };

/** The handler {@link createHandler} makes: a fetch handler that also tells what its sticky cache and history pages did. */
export type BatonHandler = FetchHandler & { stats(): HandlerStats };

function json(status: number, body: unknown): PushAnswer {
  return { status, body: JSON.stringify(body) };
}

/** An activity task's answer (protocol.md §6.2). */
function activityAnswer(answer: wire.ActivityTaskResponse): PushAnswer {
  return json(200, answer);
}

/** A {@link PushAnswer} as a fetch Response. */
export function toResponse(answer: PushAnswer): Response {
  if (answer.body === null) return new Response(null, { status: answer.status });
  return new Response(answer.body, { status: answer.status, headers: { "content-type": "application/json" } });
}

function functions(obj: Record<string, unknown> | undefined): Map<string, AnyFunction> {
  const out = new Map<string, AnyFunction>();
  for (const [name, v] of Object.entries(obj ?? {})) if (typeof v === "function") out.set(name, v as AnyFunction);
  return out;
}

/** Whether `p` fulfils. */
function succeeds(p: Promise<unknown>): Promise<boolean> {
  return p.then(
    () => true,
    () => false,
  );
}

/** A workflow task failure of the code, not of the run (protocol.md §5.3). */
function taskFailure(failure: FailureJson): WorkflowTaskResponse {
  return { failure: { cause: "WORKFLOW_WORKER_UNHANDLED_FAILURE", failure } };
}

/** Builds the handler. Usable as-is in Cloudflare Workers, Vercel/Next.js route handlers, Deno and Bun. */
export function createHandler(options: HandlerOptions): BatonHandler {
  const secrets = Array.isArray(options.signingSecret) ? options.signingSecret : [options.signingSecret];
  if (secrets.length === 0 || secrets.some((s) => !s)) throw new TypeError("createHandler needs a signingSecret");
  const workflows = functions(options.workflows);
  const activities = functions(options.activities);
  const locals = localActivityRunner(activities);
  const inline: InlineConfig | undefined =
    options.inlineActivities === false
      ? undefined
      : {
          secrets,
          activities,
          slots: new Slots(options.maxInlineAttempts ?? DEFAULT_MAX_INLINE_ATTEMPTS),
          runAttempt: (fn, args, info) => runAttempt(fn, args, info, heartbeatSender(options, info.workflowNamespace, info.taskToken)),
          resolveEvents: (request, events, payloads, deadlineMs) => resolveEvents(events, payloads, payloadSource(request, deadlineMs)),
          ...(options.identity !== undefined ? { identity: options.identity } : {}),
          ...(options.checkpointBaseUrl !== undefined ? { checkpointBaseUrl: options.checkpointBaseUrl } : {}),
        };
  const description = {
    sdk: { name: SDK_NAME, version: SDK_VERSION },
    workflows: [...workflows].map(([name, fn]) => ({
      name,
      signals: handlerNames(fn, "signal"),
      queries: handlerNames(fn, "query"),
      updates: handlerNames(fn, "update"),
    })),
    activities: [...activities.keys()].map((name) => ({ name })),
    features: ["history_pages", PAYLOAD_REFERENCES],
    schemas: describeSchemas(workflows, activities),
  };
  const maxCached = options.maxCachedWorkflows ?? DEFAULT_MAX_CACHED_WORKFLOWS;
  const cache = maxCached > 0 ? new WorkflowCache(maxCached) : undefined;
  const counts = { stickyHits: 0, stickyMisses: 0, historyPages: 0, payloadFetches: 0 };
  const pages: PageConfig = {
    secrets,
    ...(options.checkpointBaseUrl !== undefined ? { baseUrl: options.checkpointBaseUrl } : {}),
    onPage: () => void counts.historyPages++,
  };
  /**
   * The payload route (§9.1) for a push's run: an activity push's
   * `payloads_url`, else beside a workflow push's `history_url` or
   * `checkpoint_url` (on `checkpointBaseUrl` if given), else (an older
   * server's activity push) on `checkpointBaseUrl` or `serverUrl`.
   */
  const payloadSource =
    (push: { namespace: string; run_id: string; history_url?: string; checkpoint_url?: string; payloads_url?: string }, deadlineMs?: number) =>
    (): FetchPayloads => {
      const beside = push.history_url ?? push.checkpoint_url;
      const base = options.checkpointBaseUrl ?? options.serverUrl;
      let url: string;
      if (typeof push.payloads_url === "string") url = onBase(push.payloads_url, options.checkpointBaseUrl);
      else if (typeof beside === "string") url = payloadsUrlBeside(beside, options.checkpointBaseUrl);
      else if (base !== undefined) url = payloadsUrlOn(base, push.namespace);
      else throw new Error("the push refers to payloads it does not carry, and the handler has no serverUrl to fetch them from");
      return signedFetcher(url, secrets, push.run_id, () => void counts.payloadFetches++, deadlineMs);
    };
  /** Puts in place the references of the events replay reads in `r` (§9.1), from its `payloads` or fetched. */
  const resolveHistory = async <T extends WorkflowTaskRequest | QueryRequest | UpdateValidationRequest>(r: T, deadlineMs?: number): Promise<T> => {
    await resolveEvents(r.history, r.payloads, payloadSource(r, deadlineMs));
    return r;
  };

  const push: PushHandler = async (requestMethod, headers, body, platform) => {
    const receivedMs = Date.now();
    const method = requestMethod.toUpperCase();
    if (method === "GET" || method === "HEAD") return json(200, description);
    if (method !== "POST") return json(405, { error: "method not allowed" });
    const check = await verify(secrets, headers, body);
    if (!check.ok) return json(401, { error: `invalid signature: ${check.reason}` });
    let parsed: unknown;
    try {
      parsed = JSON.parse(decoder.decode(body));
    } catch {
      return json(400, { error: "body is not JSON" });
    }
    const p = parsed as { type?: unknown };
    if (p === null || typeof p !== "object") return json(400, { error: "body is not a JSON object" });
    return continueTrace(headers, `baton ${String(p.type)}`, () => dispatch(parsed, p.type, receivedMs, platform ?? {}));
  };
  const dispatch = async (parsed: unknown, type: unknown, receivedMs: number, platform: Platform): Promise<PushAnswer> => {
    if (type === "workflow_task") {
      const r = parsed as WorkflowTaskRequest;
      if (!Array.isArray(r.history)) return json(400, { error: "workflow_task without history" });
      const answer = await workflowTask(r, receivedMs, platform);
      if ("commands" in answer && options.identity !== undefined) answer.identity = options.identity;
      return json(200, answer);
    }
    if (type === "query") {
      const r = parsed as QueryRequest;
      if (!Array.isArray(r.history) || typeof r.query_name !== "string") return json(400, { error: "malformed query" });
      const whole = await pagedIn(r);
      if (typeof whole === "string") return json(502, { error: whole });
      return json(200, await handleQuery(workflows.get(r.workflow_type) as WorkflowFunction | undefined, whole));
    }
    if (type === "update_validation") {
      const r = parsed as UpdateValidationRequest;
      if (!Array.isArray(r.history) || typeof r.update_name !== "string") return json(400, { error: "malformed update_validation" });
      const whole = await pagedIn(r);
      if (typeof whole === "string") return json(502, { error: whole });
      return json(200, await handleUpdateValidation(workflows.get(r.workflow_type) as WorkflowFunction | undefined, whole));
    }
    if (type === "activity_task") {
      const r = parsed as ActivityTaskRequest;
      if (typeof r.activity_type !== "string" || typeof r.task_token !== "string") {
        return json(400, { error: "malformed activity_task" });
      }
      try {
        // Before the activity runs, its payloads in place; the fetch is bounded by the attempt's deadline.
        const positions: Position[] = ACTIVITY_POSITIONS.map((m) => [r as unknown as Record<string, unknown>, m]);
        await resolvePositions(positions, r.payloads, payloadSource(r, Date.parse(r.deadline) || undefined));
      } catch (err) {
        // Not run: the server pushes the attempt again after a back-off (protocol.md §6.2).
        return json(503, { error: `the activity's payloads could not be fetched: ${String(err)}` });
      }
      return runActivity(activities.get(r.activity_type), r, options);
    }
    return json(400, { error: `unknown push type ${JSON.stringify(type)}` });
  };
  /**
   * A query's or an update validation's push with its whole history, or
   * why it could not be paged in: answered with a status other than 200,
   * which the caller gets as `503 unavailable` (a failure would be the
   * query's, or reject the update).
   */
  const pagedIn = async <T extends QueryRequest | UpdateValidationRequest>(r: T): Promise<T | string> => {
    try {
      return await resolveHistory(await withWholeHistory(r, pages));
    } catch (err) {
      return String(err);
    }
  };

  /**
   * Answers a workflow task: in the instance the sticky cache holds for
   * the run when the push follows on from it, else by a replay of the
   * whole history (paged in if need be); then an inline session, and the
   * instance is kept for the next task when the answer has commands.
   */
  const workflowTask = async (r: WorkflowTaskRequest, receivedMs: number, platform: Platform): Promise<WorkflowTaskResponse | CheckpointedAnswer> => {
    const fn = workflows.get(r.workflow_type) as WorkflowFunction | undefined;
    // Out of the cache while the task runs; put back only if it answers with commands.
    const held = cache?.take(r.run_id);
    const deadlineMs = r.deadline !== undefined ? Date.parse(r.deadline) : undefined;
    let instance: WorkflowInstance | undefined;
    let answer: WorkflowTaskResponse | undefined;
    // The new events of a sticky push are put in place before they are applied
    // (should that fail, the replay below pages in, puts in place and decides).
    if (held !== undefined && fn !== undefined && (await succeeds(resolveHistory(r, deadlineMs))) && held.continueWith(fn, r)) {
      const continued = await held.activate();
      // A cache that went wrong (non-determinism, a failure) never fails the task: the replay below decides.
      if ("commands" in continued) {
        instance = held;
        answer = continued;
        counts.stickyHits++;
      }
    }
    if (instance === undefined || answer === undefined) {
      held?.dispose();
      if (fn === undefined) {
        return taskFailure({ message: `workflow type ${JSON.stringify(r.workflow_type)} is not registered with this handler`, type: "NotFoundError" });
      }
      if (isPartial(r)) counts.stickyMisses++;
      let whole: WorkflowTaskRequest;
      try {
        whole = await resolveHistory(await withWholeHistory(r, pages, deadlineMs), deadlineMs);
      } catch (err) {
        // The server retries the task with a fresh push (protocol.md §7.3).
        return taskFailure(errorToFailure(err));
      }
      instance = new WorkflowInstance(fn, whole, false, locals);
      answer = await instance.activate();
    }
    const out = inline !== undefined && typeof r.checkpoint_url === "string" ? await runSession(instance, r, answer, inline, receivedMs, platform) : answer;
    if (cache !== undefined && platform.longLived === true && typeof r.history_url === "string" && "commands" in out && !instance.isClosed) {
      cache.keep(r.run_id, instance);
      out.sticky = true;
    }
    return out;
  };

  const handler = (async (req: Request) => toResponse(await push(req.method, req.headers, new Uint8Array(await req.arrayBuffer())))) as BatonHandler;
  handler[PUSH_HANDLER] = push;
  handler.stats = () => ({ cachedWorkflows: cache?.size ?? 0, evictions: cache?.evictions ?? 0, ...counts });
  return handler;
}

function heartbeatSender(options: HandlerOptions, namespace: string, taskToken: string): HeartbeatSender | undefined {
  if (options.serverUrl === undefined) return undefined;
  const url = `${options.serverUrl.replace(/\/+$/, "")}/api/v1/namespaces/${encodeURIComponent(namespace)}/activities/heartbeat`;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (options.apiKey) headers.authorization = `Bearer ${options.apiKey}`;
  return async (details) => {
    const body: wire.ActivityDetailsRequest = { task_token: taskToken };
    if (details !== undefined) body.details = [details];
    const resp = await httpCall("POST", url, headers, JSON.stringify(body));
    if (resp.status === 409) return { cancelRequested: false, gone: true };
    if (resp.status < 200 || resp.status > 299) throw new Error(`heartbeat: HTTP ${resp.status}: ${resp.text}`);
    const j = JSON.parse(resp.text) as wire.HeartbeatResponse;
    return { cancelRequested: j.cancel_requested, gone: false };
  };
}

async function runActivity(fn: AnyFunction | undefined, r: ActivityTaskRequest, options: HandlerOptions): Promise<PushAnswer> {
  if (fn === undefined) {
    return activityAnswer({
      failure: { message: `activity type ${JSON.stringify(r.activity_type)} is not registered with this handler`, type: "NotFoundError" },
    });
  }
  const hbDetails = Array.isArray(r.heartbeat_details) ? r.heartbeat_details[0] : r.heartbeat_details;
  const info: Info = {
    activityId: r.activity_id,
    activityType: r.activity_type,
    taskQueue: r.task_queue,
    attempt: r.attempt,
    heartbeatDetails: hbDetails,
    idempotencyKey: r.idempotency_key,
    taskToken: r.task_token,
    workflowNamespace: r.namespace,
    workflowType: r.workflow_type,
    workflowExecution: { workflowId: r.workflow_id, runId: r.run_id },
    scheduledTimestampMs: Date.parse(r.scheduled_time),
    startedTimestampMs: Date.parse(r.started_time),
    deadlineMs: Date.parse(r.deadline),
    ...(r.heartbeat_timeout !== undefined ? { heartbeatTimeoutMs: msToNumber(r.heartbeat_timeout) } : {}),
    isLocal: false,
    isInline: false,
  };
  const outcome = await runAttempt(fn, argsFromPayload(r.input), info, heartbeatSender(options, r.namespace, r.task_token));
  return outcome === "async" ? { status: 202, body: null } : activityAnswer(outcome);
}

/**
 * Runs one activity attempt (pushed or inline, protocol.md §5.9) in its
 * context: its answer, or `"async"` when it completes later over REST.
 */
async function runAttempt(fn: AnyFunction, args: unknown[], info: Info, sender: HeartbeatSender | undefined): Promise<AttemptOutcome> {
  const ctx = new Context(info, sender);
  // The attempt's answers are refused once its deadline passes: tell the activity.
  // (A deadline already past is taken as clock skew and ignored.)
  const remaining = info.deadlineMs - Date.now();
  const deadline =
    remaining > 0 && remaining < 2_000_000_000
      ? setTimeout(() => ctx.abort(new TimeoutFailure("the activity attempt's deadline passed", "START_TO_CLOSE")), remaining)
      : undefined;
  try {
    const result: unknown = await runInContext(ctx, () => fn(...args));
    return { result: result === undefined ? null : result };
  } catch (err) {
    if (err instanceof CompleteAsyncError) return "async";
    // Acknowledge a cancellation the workflow asked for (protocol.md §6.4);
    // the server refuses `canceled` without a request, so anything else is a failure.
    if (err instanceof CancelledFailure && ctx.cancellationRequested) {
      return { canceled: { details: err.details.length > 0 ? err.details : null } };
    }
    return { failure: errorToFailure(err) };
  } finally {
    try {
      await ctx.flush();
    } catch {
      // best effort
    }
    ctx.dispose();
    if (deadline !== undefined) clearTimeout(deadline);
  }
}
