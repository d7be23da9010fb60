// Groups a run's history for the compact list and the timeline: an
// activity's scheduled/started/closed events become one item (with its
// attempts and duration), as do a timer's, a child workflow's, a workflow
// task's and an update's; every other event is an item of its own. Pure.

/** @typedef {import("../../sdk-ts/src/generated/openapi.ts").Event} Event */
/** @typedef {import("../../sdk-ts/src/generated/openapi.ts").Failure} Failure */

/**
 * @typedef {{
 *   kind: "activity" | "timer" | "child" | "workflow-task" | "update" | "event",
 *   name: string,
 *   state: string,
 *   first: number,
 *   start: number,
 *   end: number | undefined,
 *   attempts: number,
 *   events: Event[],
 *   detail: unknown,
 *   failure: Failure | undefined,
 *   child: { workflow_id: string, run_id?: string } | undefined,
 * }} Item
 */

/** @param {Event} e */
const at = (e) => Date.parse(e.event_time);

/**
 * The events that close an item: the attribute naming the item's first
 * event, and the item's state after them. A closing event's `result` and
 * `failure` become the item's.
 * @type {Record<string, [string, string]>}
 */
const CLOSES = {
  ActivityTaskCompleted: ["scheduled_event_id", "Completed"],
  ActivityTaskFailed: ["scheduled_event_id", "Failed"],
  ActivityTaskTimedOut: ["scheduled_event_id", "TimedOut"],
  ActivityTaskCanceled: ["scheduled_event_id", "Canceled"],
  TimerFired: ["started_event_id", "Fired"],
  TimerCanceled: ["started_event_id", "Canceled"],
  StartChildWorkflowExecutionFailed: ["initiated_event_id", "StartFailed"],
  ChildWorkflowExecutionCompleted: ["initiated_event_id", "Completed"],
  ChildWorkflowExecutionFailed: ["initiated_event_id", "Failed"],
  ChildWorkflowExecutionCanceled: ["initiated_event_id", "Canceled"],
  ChildWorkflowExecutionTimedOut: ["initiated_event_id", "TimedOut"],
  ChildWorkflowExecutionTerminated: ["initiated_event_id", "Terminated"],
  WorkflowTaskCompleted: ["scheduled_event_id", "Completed"],
  WorkflowTaskFailed: ["scheduled_event_id", "Failed"],
  WorkflowTaskTimedOut: ["scheduled_event_id", "TimedOut"],
};

/**
 * @param {Event[]} events
 * @returns {Item[]} in the order of each item's first event
 */
export function group(events) {
  /** @type {Map<number, Item>} keyed by the event id that opens the item */
  const open = new Map();
  /** @type {Map<string, Item>} updates by update id */
  const updates = new Map();
  /** @type {Item[]} */
  const items = [];
  /**
   * @param {Item["kind"]} kind
   * @param {string} name
   * @param {Event} e
   * @param {unknown} detail
   */
  const add = (kind, name, e, detail) => {
    /** @type {Item} */
    const item = { kind, name, state: kind === "event" ? e.event_type : "Pending", first: e.event_id, start: at(e), end: kind === "event" ? at(e) : undefined, attempts: 0, events: [e], detail, failure: undefined, child: undefined };
    items.push(item);
    return item;
  };
  /**
   * Adds a closing (or intermediate) event to the item its attribute names.
   * @param {number} opener
   * @param {Event} e
   * @param {string | undefined} state the item's state after `e`; undefined keeps it open
   */
  const join = (opener, e, state) => {
    const item = open.get(opener);
    if (!item) return add("event", e.event_type, e, e.attributes);
    item.events.push(e);
    if (state) {
      item.state = state;
      item.end = at(e);
    }
    return item;
  };
  for (const e of events) {
    switch (e.event_type) {
      case "ActivityTaskScheduled":
        open.set(e.event_id, add("activity", e.attributes.activity_type, e, e.attributes.input));
        break;
      case "ActivityTaskStarted": {
        const item = join(e.attributes.scheduled_event_id, e, undefined);
        item.attempts = e.attributes.attempt;
        if (e.attributes.last_failure) item.failure = e.attributes.last_failure;
        break;
      }
      case "ActivityTaskCancelRequested":
        join(e.attributes.scheduled_event_id, e, undefined).state = "CancelRequested";
        break;
      case "TimerStarted":
        open.set(e.event_id, add("timer", e.attributes.timer_id, e, e.attributes.start_to_fire_timeout));
        break;
      case "StartChildWorkflowExecutionInitiated": {
        const item = add("child", e.attributes.workflow_type, e, e.attributes.input);
        item.child = { workflow_id: e.attributes.workflow_id };
        open.set(e.event_id, item);
        break;
      }
      case "ChildWorkflowExecutionStarted": {
        const item = join(e.attributes.initiated_event_id, e, undefined);
        item.state = "Running";
        item.child = { ...e.attributes.workflow_execution };
        break;
      }
      case "WorkflowTaskScheduled":
        open.set(e.event_id, add("workflow-task", "Workflow task", e, undefined));
        break;
      case "WorkflowTaskStarted":
        join(e.attributes.scheduled_event_id, e, undefined).attempts++;
        break;
      case "WorkflowExecutionUpdateAdmitted": {
        const item = add("update", e.attributes.update_name, e, e.attributes.input);
        updates.set(e.attributes.update_id, item);
        break;
      }
      case "WorkflowExecutionUpdateAccepted":
      case "WorkflowExecutionUpdateCompleted": {
        const item = updates.get(e.attributes.update_id);
        if (!item) {
          add("event", e.event_type, e, e.attributes);
          break;
        }
        item.events.push(e);
        if (e.event_type === "WorkflowExecutionUpdateAccepted") item.state = "Accepted";
        else {
          item.state = e.attributes.failure ? "Failed" : "Completed";
          item.end = at(e);
          item.detail = e.attributes.failure ? item.detail : e.attributes.result;
          item.failure = e.attributes.failure;
        }
        break;
      }
      default: {
        const closes = CLOSES[e.event_type];
        if (!closes) {
          add("event", e.event_type, e, e.attributes);
          break;
        }
        /** @type {Record<string, any>} */
        const attrs = e.attributes;
        const item = join(Number(attrs[closes[0]]), e, closes[1]);
        if ("result" in attrs) item.detail = attrs.result;
        if (attrs.failure) item.failure = attrs.failure;
      }
    }
  }
  return items;
}

/**
 * A failure and its causes, outermost first.
 * @param {Failure | undefined} failure
 * @returns {Failure[]}
 */
export function causeChain(failure) {
  /** @type {Failure[]} */
  const chain = [];
  for (let f = failure; f && chain.length < 32; f = f.cause) chain.push(f);
  return chain;
}
