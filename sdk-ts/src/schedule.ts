/**
 * Schedules (as `@temporalio/client`'s): the shapes a schedule is created
 * with ({@link ScheduleOptions}), what describe and list return, and
 * `client.schedule` ({@link ScheduleClient}: `create`, `getHandle`, `list`)
 * with its {@link ScheduleHandle}. Re-exported by `@baton/sdk/client`. The
 * wire is the REST API's `/api/v1/namespaces/{ns}/schedules…`
 * (openapi/openapi.yaml).
 */
import { type Duration, type RetryPolicy, formatDuration, parseWireDuration, retryPolicyToWire } from "./common.js";
import type * as wire from "./generated/openapi.js";
import { type Connection, ServiceError } from "./client.js";

/** What to do when an action is due while a workflow the schedule started is still open. */
export const ScheduleOverlapPolicy = {
  /** Don't start it (the default). */
  SKIP: "SKIP",
  /** Start it once the open one closes; at most one waits. */
  BUFFER_ONE: "BUFFER_ONE",
  /** Start every waiting one in turn as the previous one closes. */
  BUFFER_ALL: "BUFFER_ALL",
  /** Request cancellation of the open one, start after it closed. */
  CANCEL_OTHER: "CANCEL_OTHER",
  /** Terminate the open one, then start. */
  TERMINATE_OTHER: "TERMINATE_OTHER",
  /** Start it anyway. */
  ALLOW_ALL: "ALLOW_ALL",
} as const;
export type ScheduleOverlapPolicy = (typeof ScheduleOverlapPolicy)[keyof typeof ScheduleOverlapPolicy];

export const MONTHS = ["JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER", "NOVEMBER", "DECEMBER"] as const;
export type Month = (typeof MONTHS)[number];
export const DAYS_OF_WEEK = ["SUNDAY", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY"] as const;
export type DayOfWeek = (typeof DAYS_OF_WEEK)[number];

/** Values `start` to `end` inclusive every `step`. */
export interface Range<Unit> {
  start: Unit;
  end: Unit;
  step: number;
}

/** A {@link Range}, a `{start, end?}` or one value. */
export type LooseRange<Unit> = Range<Unit> | { start: Unit; end?: Unit; step?: never } | Unit;

/** Calendar times: a time matches when every field matches. Defaults: second, minute and hour 0; every day, month, year and weekday. */
export interface CalendarSpec {
  second?: LooseRange<number> | LooseRange<number>[] | "*";
  minute?: LooseRange<number> | LooseRange<number>[] | "*";
  hour?: LooseRange<number> | LooseRange<number>[] | "*";
  dayOfMonth?: LooseRange<number> | LooseRange<number>[] | "*";
  month?: LooseRange<Month> | LooseRange<Month>[] | "*";
  year?: LooseRange<number> | LooseRange<number>[] | "*";
  dayOfWeek?: LooseRange<DayOfWeek> | LooseRange<DayOfWeek>[] | "*";
  comment?: string;
}

/** A {@link CalendarSpec} as describe and list return it: every field as ranges (`year` empty: every year). */
export interface CalendarSpecDescription {
  second: Range<number>[];
  minute: Range<number>[];
  hour: Range<number>[];
  dayOfMonth: Range<number>[];
  month: Range<Month>[];
  year: Range<number>[];
  dayOfWeek: Range<DayOfWeek>[];
  comment?: string;
}

/** The times epoch + n × `every` + `offset` (whole seconds). */
export interface IntervalSpec {
  every: Duration;
  offset?: Duration;
}

/** An {@link IntervalSpec} as describe returns it, in milliseconds. */
export interface IntervalSpecDescription {
  every: number;
  offset: number;
}

/**
 * When actions are due: the union of `calendars`', `intervals`' and
 * `cronExpressions`' times, minus those matching `skip`, between `startAt`
 * and `endAt`, each delayed by a jitter below `jitter` (the same on every
 * node), in `timezone` (IANA, default UTC).
 */
export interface ScheduleSpec {
  calendars?: CalendarSpec[];
  intervals?: IntervalSpec[];
  cronExpressions?: string[];
  skip?: CalendarSpec[];
  startAt?: Date;
  endAt?: Date;
  jitter?: Duration;
  timezone?: string;
}

/** A {@link ScheduleSpec} as describe and list return it (durations in milliseconds). */
export type ScheduleSpecDescription = Omit<ScheduleSpec, "calendars" | "intervals" | "skip" | "jitter"> & {
  calendars?: CalendarSpecDescription[];
  intervals?: IntervalSpecDescription[];
  skip?: CalendarSpecDescription[];
  jitter?: number;
};

type WorkflowRef = string | ((...args: never[]) => Promise<unknown>);

/**
 * Starts a workflow. Each started run's workflow id is `workflowId` (default
 * `${scheduleId}-workflow`) plus `-` and its nominal time
 * (`report-2025-01-06T09:00:00Z`).
 */
export interface ScheduleOptionsStartWorkflowAction {
  type: "startWorkflow";
  workflowType: WorkflowRef;
  workflowId?: string;
  taskQueue: string;
  args?: unknown[];
  memo?: Record<string, unknown>;
  retry?: RetryPolicy;
  workflowExecutionTimeout?: Duration;
  workflowRunTimeout?: Duration;
  workflowTaskTimeout?: Duration;
}

export type ScheduleOptionsAction = ScheduleOptionsStartWorkflowAction;

/** A past time range whose actions are taken now (after `start`, up to `end`), with `overlap` instead of the schedule's policy. */
export interface Backfill {
  start: Date;
  end: Date;
  overlap?: ScheduleOverlapPolicy;
}

export interface SchedulePolicies {
  /** @default SKIP */
  overlap?: ScheduleOverlapPolicy;
  /** After downtime, a missed action is still taken if it is at most this late (at least 10 s). @default 1 year */
  catchupWindow?: Duration;
  /** Pause when a started workflow fails or times out. */
  pauseOnFailure?: boolean;
}

/** What {@link ScheduleClient.create} takes. */
export interface ScheduleOptions {
  scheduleId: string;
  spec: ScheduleSpec;
  action: ScheduleOptionsAction;
  policies?: SchedulePolicies;
  state?: {
    paused?: boolean;
    note?: string;
    /** Scheduled actions stop once this many were taken (triggers and backfills still run); undefined: no limit. */
    remainingActions?: number;
    /** One action right after the create. */
    triggerImmediately?: boolean;
    /** Backfills right after the create. */
    backfill?: Backfill[];
  };
}

/** What an updater of {@link ScheduleHandle.update} returns: the whole new schedule. */
export interface ScheduleUpdateOptions {
  spec: ScheduleSpec;
  action: ScheduleOptionsAction;
  policies?: SchedulePolicies;
  state?: Omit<NonNullable<ScheduleOptions["state"]>, "triggerImmediately" | "backfill">;
}

export interface ScheduleExecutionStartWorkflowActionResult {
  type: "startWorkflow";
  workflow: { workflowId: string; firstExecutionRunId: string };
}

export type ScheduleExecutionActionResult = ScheduleExecutionStartWorkflowActionResult;

/** One action taken: when it was due (jitter included), when it started, and what it started. */
export interface ScheduleExecutionResult {
  scheduledAt: Date;
  takenAt: Date;
  action: ScheduleExecutionActionResult;
}

export interface ScheduleSummaryStartWorkflowAction {
  type: "startWorkflow";
  workflowType: string;
}

export type ScheduleDescriptionStartWorkflowAction = ScheduleSummaryStartWorkflowAction & {
  workflowId: string;
  taskQueue: string;
  args: unknown[];
  memo?: Record<string, unknown>;
  retry?: RetryPolicy;
  workflowExecutionTimeout?: number;
  workflowRunTimeout?: number;
  workflowTaskTimeout?: number;
};

/** What {@link ScheduleHandle.describe} returns; usable as is as {@link ScheduleUpdateOptions}. */
export interface ScheduleDescription {
  scheduleId: string;
  spec: ScheduleSpecDescription;
  action: ScheduleDescriptionStartWorkflowAction;
  policies: { overlap: ScheduleOverlapPolicy; catchupWindow: number; pauseOnFailure: boolean };
  state: { paused: boolean; note?: string; remainingActions?: number };
  info: {
    /** The last 10, oldest first. */
    recentActions: ScheduleExecutionResult[];
    /** The next 10 (none while paused). */
    nextActionTimes: Date[];
    numActionsTaken: number;
    numActionsMissedCatchupWindow: number;
    numActionsSkippedOverlap: number;
    createdAt: Date;
    lastUpdatedAt: Date | undefined;
    /** Workflows it started that are still open. */
    runningActions: ScheduleExecutionActionResult[];
  };
  /** The server's answer (with `conflict_token`). */
  raw: wire.ScheduleDescription;
}

/** One row of {@link ScheduleClient.list}. */
export interface ScheduleSummary {
  scheduleId: string;
  spec: ScheduleSpecDescription;
  action: ScheduleSummaryStartWorkflowAction;
  state: { paused: boolean; note?: string };
  info: { recentActions: ScheduleExecutionResult[]; nextActionTimes: Date[] };
}

/** `create` with an id that a schedule already has. */
export class ScheduleAlreadyRunning extends Error {
  override readonly name = "ScheduleAlreadyRunning";
  constructor(
    message: string,
    public readonly scheduleId: string,
  ) {
    super(message);
  }
}

/** No schedule has this id. */
export class ScheduleNotFoundError extends Error {
  override readonly name = "ScheduleNotFoundError";
  constructor(
    message: string,
    public readonly scheduleId: string,
  ) {
    super(message);
  }
}

// ---- to the wire ---------------------------------------------------------------------

type Field = "second" | "minute" | "hour" | "dayOfMonth" | "month" | "year" | "dayOfWeek";
const WIRE_FIELD: Record<Field, keyof Omit<wire.ScheduleCalendarSpec, "comment">> = {
  second: "second",
  minute: "minute",
  hour: "hour",
  dayOfMonth: "day_of_month",
  month: "month",
  year: "year",
  dayOfWeek: "day_of_week",
};
/** Every value of a field (`'*'`), and a field's default. */
const ALL: Record<Field, wire.ScheduleRange[]> = {
  second: [{ start: 0, end: 59, step: 1 }],
  minute: [{ start: 0, end: 59, step: 1 }],
  hour: [{ start: 0, end: 23, step: 1 }],
  dayOfMonth: [{ start: 1, end: 31, step: 1 }],
  month: [{ start: 1, end: 12, step: 1 }],
  year: [],
  dayOfWeek: [{ start: 0, end: 6, step: 1 }],
};
const DEFAULT: Record<Field, wire.ScheduleRange[]> = { ...ALL, second: [{ start: 0, end: 0, step: 1 }], minute: [{ start: 0, end: 0, step: 1 }], hour: [{ start: 0, end: 0, step: 1 }] };

function unitToNumber(field: Field, v: number | string): number {
  if (typeof v === "number") return v;
  const names: readonly string[] = field === "month" ? MONTHS : DAYS_OF_WEEK;
  const i = names.indexOf(v.toUpperCase());
  if (i < 0 || (field !== "month" && field !== "dayOfWeek")) throw new TypeError(`calendar ${field}: unknown value ${JSON.stringify(v)}`);
  return field === "month" ? i + 1 : i;
}

function rangesToWire(field: Field, loose: LooseRange<number | string> | LooseRange<number | string>[] | "*" | undefined): wire.ScheduleRange[] {
  if (loose === undefined) return DEFAULT[field];
  if (loose === "*") return ALL[field];
  const list = Array.isArray(loose) ? loose : [loose];
  return list.map((r) => {
    if (typeof r === "number" || typeof r === "string") {
      const n = unitToNumber(field, r);
      return { start: n, end: n, step: 1 };
    }
    const start = unitToNumber(field, r.start);
    const end = r.end === undefined ? start : unitToNumber(field, r.end);
    return { start, end: Math.max(start, end), step: r.step || 1 };
  });
}

function calendarToWire(c: CalendarSpec | CalendarSpecDescription): wire.ScheduleCalendarSpec {
  const out: wire.ScheduleCalendarSpec = {};
  for (const field of Object.keys(WIRE_FIELD) as Field[]) {
    const ranges = rangesToWire(field, c[field] as LooseRange<number | string>[] | undefined);
    if (ranges.length > 0) out[WIRE_FIELD[field]] = ranges;
  }
  if (c.comment) out.comment = c.comment;
  return out;
}

function specToWire(s: ScheduleSpec | ScheduleSpecDescription): wire.ScheduleSpec {
  const out: wire.ScheduleSpec = {};
  if (s.cronExpressions?.length) out.cron_expressions = [...s.cronExpressions];
  if (s.calendars?.length) out.calendars = s.calendars.map(calendarToWire);
  if (s.intervals?.length) {
    out.intervals = s.intervals.map((i) => {
      const iv: wire.ScheduleIntervalSpec = { every: formatDuration(i.every) };
      if (i.offset) iv.offset = formatDuration(i.offset);
      return iv;
    });
  }
  if (s.skip?.length) out.exclude_calendars = s.skip.map(calendarToWire);
  if (s.startAt) out.start_time = s.startAt.toISOString();
  if (s.endAt) out.end_time = s.endAt.toISOString();
  if (s.jitter) out.jitter = formatDuration(s.jitter);
  if (s.timezone) out.time_zone = s.timezone;
  return out;
}

function typeName(w: WorkflowRef): string {
  return typeof w === "string" ? w : w.name;
}

function scheduleToWire(scheduleId: string, o: ScheduleUpdateOptions): wire.Schedule {
  const a = o.action;
  const start: wire.ScheduleStartWorkflowAction = {
    workflow_id: a.workflowId ?? `${scheduleId}-workflow`,
    workflow_type: typeName(a.workflowType),
    task_queue: a.taskQueue,
    input: a.args ?? [],
  };
  if (a.workflowExecutionTimeout !== undefined) start.workflow_execution_timeout = formatDuration(a.workflowExecutionTimeout);
  if (a.workflowRunTimeout !== undefined) start.workflow_run_timeout = formatDuration(a.workflowRunTimeout);
  if (a.workflowTaskTimeout !== undefined) start.workflow_task_timeout = formatDuration(a.workflowTaskTimeout);
  if (a.memo !== undefined) start.memo = a.memo;
  if (a.retry !== undefined) start.retry_policy = retryPolicyToWire(a.retry);
  const policies: wire.SchedulePolicies = { overlap_policy: o.policies?.overlap ?? ScheduleOverlapPolicy.SKIP, pause_on_failure: o.policies?.pauseOnFailure ?? false };
  if (o.policies?.catchupWindow !== undefined) policies.catchup_window = formatDuration(o.policies.catchupWindow);
  const remaining = o.state?.remainingActions;
  const state: wire.ScheduleState = {
    paused: o.state?.paused ?? false,
    note: o.state?.note ?? "",
    limited_actions: remaining !== undefined,
    remaining_actions: remaining ?? 0,
  };
  return { spec: specToWire(o.spec), action: { start_workflow: start }, policies, state };
}

// ---- from the wire -------------------------------------------------------------------

function rangesFromWire<U>(field: Field, ranges: wire.ScheduleRange[] | undefined, unit: (n: number) => U): Range<U>[] {
  const rs = ranges && ranges.length > 0 ? ranges : DEFAULT[field];
  return rs.map((r) => ({ start: unit(r.start), end: unit(Math.max(r.start, r.end ?? r.start)), step: r.step || 1 }));
}

function calendarFromWire(c: wire.ScheduleCalendarSpec): CalendarSpecDescription {
  const n = (v: number): number => v;
  const out: CalendarSpecDescription = {
    second: rangesFromWire("second", c.second, n),
    minute: rangesFromWire("minute", c.minute, n),
    hour: rangesFromWire("hour", c.hour, n),
    dayOfMonth: rangesFromWire("dayOfMonth", c.day_of_month, n),
    month: rangesFromWire("month", c.month, (v) => MONTHS[(v - 1 + 12) % 12] as Month),
    year: rangesFromWire("year", c.year, n),
    dayOfWeek: rangesFromWire("dayOfWeek", c.day_of_week, (v) => DAYS_OF_WEEK[v % 7] as DayOfWeek),
  };
  if (c.comment) out.comment = c.comment;
  return out;
}

function specFromWire(s: wire.ScheduleSpec): ScheduleSpecDescription {
  const out: ScheduleSpecDescription = {
    calendars: (s.calendars ?? []).map(calendarFromWire),
    intervals: (s.intervals ?? []).map((i) => ({ every: parseWireDuration(i.every), offset: i.offset ? parseWireDuration(i.offset) : 0 })),
    cronExpressions: [...(s.cron_expressions ?? [])],
    skip: (s.exclude_calendars ?? []).map(calendarFromWire),
  };
  if (s.start_time) out.startAt = new Date(s.start_time);
  if (s.end_time) out.endAt = new Date(s.end_time);
  if (s.jitter) out.jitter = parseWireDuration(s.jitter);
  if (s.time_zone) out.timezone = s.time_zone;
  return out;
}

function retryFromWire(r: wire.RetryPolicySpec): RetryPolicy {
  const out: RetryPolicy = {};
  if (r.initial_interval != null) out.initialInterval = parseWireDuration(r.initial_interval);
  if (r.backoff_coefficient != null) out.backoffCoefficient = r.backoff_coefficient;
  if (r.maximum_interval != null) out.maximumInterval = parseWireDuration(r.maximum_interval);
  if (r.maximum_attempts != null) out.maximumAttempts = r.maximum_attempts;
  if (r.non_retryable_error_types != null) out.nonRetryableErrorTypes = r.non_retryable_error_types;
  return out;
}

function actionFromWire(a: wire.ScheduleStartWorkflowAction): ScheduleDescriptionStartWorkflowAction {
  const input: unknown = a.input;
  const out: ScheduleDescriptionStartWorkflowAction = {
    type: "startWorkflow",
    workflowType: a.workflow_type,
    workflowId: a.workflow_id,
    taskQueue: a.task_queue,
    args: input === undefined || input === null ? [] : Array.isArray(input) ? (input as unknown[]) : [input],
  };
  if (a.memo) out.memo = a.memo;
  if (a.retry_policy) out.retry = retryFromWire(a.retry_policy);
  if (a.workflow_execution_timeout) out.workflowExecutionTimeout = parseWireDuration(a.workflow_execution_timeout);
  if (a.workflow_run_timeout) out.workflowRunTimeout = parseWireDuration(a.workflow_run_timeout);
  if (a.workflow_task_timeout) out.workflowTaskTimeout = parseWireDuration(a.workflow_task_timeout);
  return out;
}

function resultFromWire(r: wire.ScheduleActionResult): ScheduleExecutionResult {
  return {
    scheduledAt: new Date(r.schedule_time),
    takenAt: new Date(r.actual_time),
    action: { type: "startWorkflow", workflow: { workflowId: r.workflow_id, firstExecutionRunId: r.run_id ?? "" } },
  };
}

function describeFromWire(d: wire.ScheduleDescription): ScheduleDescription {
  const s = d.schedule;
  const state: ScheduleDescription["state"] = { paused: s.state?.paused ?? false };
  if (s.state?.note) state.note = s.state.note;
  if (s.state?.limited_actions) state.remainingActions = s.state.remaining_actions ?? 0;
  return {
    scheduleId: d.schedule_id,
    spec: specFromWire(s.spec),
    action: actionFromWire(s.action.start_workflow),
    policies: {
      overlap: s.policies?.overlap_policy ?? ScheduleOverlapPolicy.SKIP,
      catchupWindow: s.policies?.catchup_window ? parseWireDuration(s.policies.catchup_window) : 365 * 86_400_000,
      pauseOnFailure: s.policies?.pause_on_failure ?? false,
    },
    state,
    info: {
      recentActions: d.info.recent_actions.map(resultFromWire),
      nextActionTimes: d.info.future_action_times.map((t) => new Date(t)),
      numActionsTaken: d.info.action_count,
      numActionsMissedCatchupWindow: d.info.missed_catchup_window,
      numActionsSkippedOverlap: d.info.overlap_skipped,
      createdAt: new Date(d.info.create_time),
      lastUpdatedAt: d.info.update_time ? new Date(d.info.update_time) : undefined,
      runningActions: d.info.running_workflows.map((w) => ({ type: "startWorkflow", workflow: { workflowId: w.workflow_id, firstExecutionRunId: w.run_id } })),
    },
    raw: d,
  };
}

function summaryFromWire(e: wire.ScheduleListEntry): ScheduleSummary {
  const state: ScheduleSummary["state"] = { paused: e.paused };
  if (e.note) state.note = e.note;
  return {
    scheduleId: e.schedule_id,
    spec: specFromWire(e.spec),
    action: { type: "startWorkflow", workflowType: e.workflow_type },
    state,
    info: { recentActions: e.recent_actions.map(resultFromWire), nextActionTimes: e.future_action_times.map((t) => new Date(t)) },
  };
}

// ---- client and handle ---------------------------------------------------------------

/** How often `update` describes and retries when the schedule changed in between (each action it takes changes it). */
const UPDATE_ATTEMPTS = 20;

/** A schedule by id. A schedule that does not exist throws {@link ScheduleNotFoundError}. */
export class ScheduleHandle {
  constructor(
    private readonly conn: Connection,
    private readonly namespace: string,
    readonly scheduleId: string,
  ) {}

  private path(suffix = ""): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/schedules/${encodeURIComponent(this.scheduleId)}${suffix}`;
  }

  private async call(method: string, suffix: string, body?: unknown): Promise<unknown> {
    try {
      return (await this.conn.call(method, this.path(suffix), body)).json;
    } catch (err) {
      if (err instanceof ServiceError && err.status === 404 && err.code === "not_found") throw new ScheduleNotFoundError(err.message, this.scheduleId);
      throw err;
    }
  }

  async describe(): Promise<ScheduleDescription> {
    return describeFromWire((await this.call("GET", "")) as wire.ScheduleDescription);
  }

  /**
   * Describes the schedule, calls `updateFn` with the description and writes
   * the schedule it returns, guarded by the description's conflict token:
   * when the schedule changed in between (an action it took, another
   * client), `updateFn` is called again with a fresh description.
   */
  async update(updateFn: (previous: ScheduleDescription) => ScheduleUpdateOptions): Promise<void> {
    for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
      const previous = await this.describe();
      const body: wire.UpdateScheduleRequest = { schedule: scheduleToWire(this.scheduleId, updateFn(previous)), conflict_token: previous.raw.conflict_token };
      try {
        await this.call("POST", "/update", body);
        return;
      } catch (err) {
        if (!(err instanceof ServiceError && err.status === 409)) throw err;
      }
    }
    throw new ServiceError(`schedule ${this.scheduleId} kept changing during ${UPDATE_ATTEMPTS} update attempts`, 409, "conflict");
  }

  /** Deletes the schedule; the workflows it started keep running. */
  async delete(): Promise<void> {
    await this.call("DELETE", "");
  }

  /** One action now (nominal time now), with `overlap` instead of the schedule's policy; not subject to pause or remaining actions. */
  async trigger(overlap?: ScheduleOverlapPolicy): Promise<void> {
    const body: wire.TriggerScheduleRequest = {};
    if (overlap !== undefined) body.overlap_policy = overlap;
    await this.call("POST", "/trigger", body);
  }

  /** Takes the spec's times in each range now, each with its nominal time in its workflow id. */
  async backfill(options: Backfill | Backfill[]): Promise<void> {
    const list = Array.isArray(options) ? options : [options];
    const body: wire.BackfillScheduleRequest = {
      backfills: list.map((b) => {
        const out: wire.ScheduleBackfill = { start_time: b.start.toISOString(), end_time: b.end.toISOString() };
        if (b.overlap !== undefined) out.overlap_policy = b.overlap;
        return out;
      }),
    };
    await this.call("POST", "/backfill", body);
  }

  /** Stops scheduled actions (triggers and backfills still run); the note replaces the schedule's. */
  async pause(note?: string): Promise<void> {
    const body: wire.ScheduleNoteRequest = note === undefined ? {} : { note };
    await this.call("POST", "/pause", body);
  }

  /** Resumes with the spec's first time after now: times that passed while paused are not made up. */
  async unpause(note?: string): Promise<void> {
    const body: wire.ScheduleNoteRequest = note === undefined ? {} : { note };
    await this.call("POST", "/unpause", body);
  }
}

/** `client.schedule`. */
export class ScheduleClient {
  constructor(
    private readonly conn: Connection,
    private readonly namespace: string,
  ) {}

  /**
   * Creates a schedule; its first action is the spec's first time after
   * now. {@link ScheduleAlreadyRunning} when the id is taken; a
   * {@link ServiceError} (400, naming the field) for a spec the server
   * refuses, and nothing is stored. `state.triggerImmediately` and
   * `state.backfill` are sent right after the create.
   */
  async create(options: ScheduleOptions): Promise<ScheduleHandle> {
    const body: wire.CreateScheduleRequest = { schedule: scheduleToWire(options.scheduleId, options) };
    const path = `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/schedules/${encodeURIComponent(options.scheduleId)}`;
    try {
      await this.conn.call("POST", path, body);
    } catch (err) {
      if (err instanceof ServiceError && err.code === "already_exists") throw new ScheduleAlreadyRunning(err.message, options.scheduleId);
      throw err;
    }
    const handle = this.getHandle(options.scheduleId);
    if (options.state?.triggerImmediately) await handle.trigger(options.policies?.overlap);
    if (options.state?.backfill?.length) await handle.backfill(options.state.backfill);
    return handle;
  }

  /** A handle on the schedule with this id (not checked until used). */
  getHandle(scheduleId: string): ScheduleHandle {
    return new ScheduleHandle(this.conn, this.namespace, scheduleId);
  }

  /** The namespace's schedules in id order; only those whose id starts with `idPrefix` and, with `paused`, only paused or active ones. */
  async *list(options: { pageSize?: number; idPrefix?: string; paused?: boolean } = {}): AsyncIterable<ScheduleSummary> {
    let token: string | undefined;
    do {
      const q = new URLSearchParams();
      if (options.pageSize) q.set("page_size", String(options.pageSize));
      if (options.idPrefix) q.set("id_prefix", options.idPrefix);
      if (options.paused !== undefined) q.set("paused", String(options.paused));
      if (token) q.set("next_page_token", token);
      const { json } = await this.conn.call("GET", `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/schedules?${q.toString()}`);
      const page = json as wire.ScheduleList;
      for (const e of page.schedules) yield summaryFromWire(e);
      token = page.next_page_token;
    } while (token);
  }
}
