// Schedules: the list, and one schedule's detail (its spec in words, the
// next 10 and last 10 actions) with pause/unpause (with a note), trigger
// and backfill.

import { call, enc, qs } from "../api.js";
import { openDialog } from "../dialogs.js";
import { fact, h, json, mount, notify, table, time } from "../dom.js";
import { link, navigate, nsPath, runPath } from "../nav.js";

/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").ScheduleSpec} ScheduleSpec */
/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").ScheduleRange} ScheduleRange */
/** @typedef {import("../../../sdk-ts/src/generated/openapi.ts").ScheduleCalendarSpec} ScheduleCalendarSpec */

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["", "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/**
 * @param {ScheduleRange[] | undefined} ranges
 * @param {(n: number) => string} [name]
 */
function rangesInWords(ranges, name = String) {
  if (!ranges || ranges.length === 0) return undefined;
  return ranges
    .map((r) => {
      const end = r.end ?? r.start;
      const step = r.step && r.step > 1 ? ` every ${r.step}` : "";
      return end === r.start ? name(r.start) : `${name(r.start)}–${name(end)}${step}`;
    })
    .join(", ");
}

/** @param {ScheduleCalendarSpec} c */
function calendarInWords(c) {
  const parts = [];
  const hour = rangesInWords(c.hour);
  const minute = rangesInWords(c.minute);
  const second = rangesInWords(c.second);
  parts.push(`at hour ${hour ?? "0"}, minute ${minute ?? "0"}${second && second !== "0" ? `, second ${second}` : ""}`);
  const dom = rangesInWords(c.day_of_month);
  if (dom) parts.push(`on day ${dom} of the month`);
  const dow = rangesInWords(c.day_of_week, (n) => DAYS[n] ?? String(n));
  if (dow) parts.push(`on ${dow}`);
  const month = rangesInWords(c.month, (n) => MONTHS[n] ?? String(n));
  if (month) parts.push(`in ${month}`);
  const year = rangesInWords(c.year);
  if (year) parts.push(`in ${year}`);
  return `${parts.join(" ")}${c.comment ? ` (${c.comment})` : ""}`;
}

/**
 * `"3600s"` as "hour", `"900s"` as "15 minutes" (the API writes durations
 * in seconds); anything else as written.
 * @param {string} d
 */
function everyInWords(d) {
  const m = /^(\d+(?:\.\d+)?)s$/.exec(d);
  if (!m) return d;
  const secs = Number(m[1]);
  for (const [unit, size] of /** @type {const} */ ([["day", 86400], ["hour", 3600], ["minute", 60]])) {
    if (secs >= size && secs % size === 0) {
      const n = secs / size;
      return n === 1 ? unit : `${n} ${unit}s`;
    }
  }
  return secs === 1 ? "second" : `${secs} seconds`;
}

/**
 * A schedule spec in words.
 * @param {ScheduleSpec} spec
 */
function specInWords(spec) {
  const parts = [];
  for (const cron of spec.cron_expressions ?? []) parts.push(`cron “${cron}”`);
  for (const c of spec.calendars ?? []) parts.push(calendarInWords(c));
  for (const i of spec.intervals ?? []) parts.push(`every ${everyInWords(i.every)}${i.offset ? ` (offset ${everyInWords(i.offset)})` : ""}`);
  let s = parts.length ? parts.join("; ") : "never (no times)";
  for (const c of spec.exclude_calendars ?? []) s += `; except ${calendarInWords(c)}`;
  if (spec.time_zone) s += `, in ${spec.time_zone}`;
  if (spec.jitter) s += `, jitter up to ${spec.jitter}`;
  if (spec.start_time) s += `, from ${new Date(spec.start_time).toLocaleString()}`;
  if (spec.end_time) s += `, until ${new Date(spec.end_time).toLocaleString()}`;
  return s;
}

/** @param {import("../nav.js").PageContext} ctx */
export async function schedulesPage(ctx) {
  const { root, ns } = ctx;
  /** @type {import("../../../sdk-ts/src/generated/openapi.ts").ScheduleList} */
  const list = await call("GET", `/namespaces/${enc(ns)}/schedules${qs({ next_page_token: ctx.query.get("page") })}`);
  const rows = list.schedules.map((s) =>
    h(
      "tr",
      {},
      h("td", {}, link(`${nsPath(ns)}/schedules/${encodeURIComponent(s.schedule_id)}`, s.schedule_id)),
      h("td", {}, s.workflow_type),
      h("td", {}, s.paused ? h("span", { class: "badge s-canceled" }, "paused") : h("span", { class: "badge s-running" }, "active"), s.note ? ` ${s.note}` : ""),
      h("td", {}, specInWords(s.spec)),
      h("td", {}, time(s.future_action_times[0])),
      h("td", {}, time(s.recent_actions[s.recent_actions.length - 1]?.actual_time)),
    ),
  );
  mount(
    root,
    h("div", { class: "title" }, h("h1", {}, "Schedules")),
    rows.length ? table(["Schedule", "Workflow type", "State", "Spec", "Next action", "Last action"], rows, { "aria-label": "Schedules" }) : h("p", { class: "muted" }, "No schedules in this namespace."),
    list.next_page_token ? link(`${nsPath(ns)}/schedules${qs({ page: list.next_page_token })}`, "Next page →") : null,
  );
}

/** @param {import("../nav.js").PageContext} ctx */
export async function schedulePage(ctx) {
  const { root, ns } = ctx;
  const id = ctx.params[0] ?? "";
  const base = `/namespaces/${enc(ns)}/schedules/${enc(id)}`;
  /** @type {import("../../../sdk-ts/src/generated/openapi.ts").ScheduleDescription} */
  const d = await call("GET", base);
  const reload = () => navigate(`${nsPath(ns)}/schedules/${encodeURIComponent(id)}`, { replace: true });
  const paused = d.schedule.state?.paused ?? false;
  const action = d.schedule.action.start_workflow;
  const pause = h("button", { type: "button" }, paused ? "Unpause" : "Pause");
  pause.addEventListener("click", async () => {
    const ok = await openDialog({
      title: paused ? "Unpause the schedule" : "Pause the schedule",
      confirm: paused ? "Unpause" : "Pause",
      fields: [{ name: "note", label: "Note", required: true }],
      action: async (v) => {
        await call("POST", `${base}/${paused ? "unpause" : "pause"}`, { note: v.note ?? "" });
      },
    });
    if (ok) {
      notify(paused ? "Unpaused." : "Paused.");
      reload();
    }
  });
  const trigger = h("button", { type: "button" }, "Trigger now");
  trigger.addEventListener("click", async () => {
    const ok = await openDialog({
      title: "Trigger an action now",
      confirm: "Trigger",
      fields: [{ name: "overlap_policy", label: "Overlap policy", kind: "select", options: ["", "SKIP", "BUFFER_ONE", "BUFFER_ALL", "CANCEL_OTHER", "TERMINATE_OTHER", "ALLOW_ALL"] }],
      action: async (v) => {
        await call("POST", `${base}/trigger`, v.overlap_policy ? { overlap_policy: v.overlap_policy } : {});
      },
    });
    if (ok) {
      notify("Triggered.");
      reload();
    }
  });
  const backfill = h("button", { type: "button" }, "Backfill…");
  backfill.addEventListener("click", async () => {
    const ok = await openDialog({
      title: "Backfill",
      text: "Takes the actions the spec names in this range of time, now.",
      confirm: "Backfill",
      fields: [
        { name: "start", label: "From", kind: "datetime", required: true },
        { name: "end", label: "To", kind: "datetime", required: true },
        { name: "overlap_policy", label: "Overlap policy", kind: "select", options: ["ALLOW_ALL", "SKIP", "BUFFER_ONE", "BUFFER_ALL", "CANCEL_OTHER", "TERMINATE_OTHER"] },
      ],
      action: async (v) => {
        const start = new Date(v.start ?? "");
        const end = new Date(v.end ?? "");
        if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime())) throw new Error("Give both times.");
        /** @type {import("../../../sdk-ts/src/generated/openapi.ts").BackfillScheduleRequest} */
        const body = { backfills: [{ start_time: start.toISOString(), end_time: end.toISOString(), overlap_policy: /** @type {any} */ (v.overlap_policy) }] };
        await call("POST", `${base}/backfill`, body);
      },
    });
    if (ok) {
      notify("Backfill requested.");
      reload();
    }
  });
  const recent = [...d.info.recent_actions].reverse();
  mount(
    root,
    h("div", { class: "title" }, h("h1", {}, id, " ", paused ? h("span", { class: "badge s-canceled" }, "paused") : h("span", { class: "badge s-running" }, "active")), h("div", { class: "actions" }, pause, trigger, backfill)),
    h("p", { class: "spec" }, specInWords(d.schedule.spec)),
    d.schedule.state?.note ? h("p", { class: "muted" }, `Note: ${d.schedule.state.note}`) : null,
    h(
      "table",
      { class: "facts", "aria-label": "Schedule" },
      h(
        "tbody",
        {},
        fact("Starts", `${action.workflow_type} on ${action.task_queue}, as ${action.workflow_id}-<action time>`),
        fact("Overlap policy", d.schedule.policies?.overlap_policy ?? "SKIP"),
        fact("Actions taken", d.info.action_count),
        fact("Skipped (overlap, missed)", `${d.info.overlap_skipped}, ${d.info.missed_catchup_window}`),
        fact("Created", time(d.info.create_time)),
      ),
    ),
    h("div", { class: "columns" },
      h("section", {}, h("h2", {}, "Next 10 actions"), d.info.future_action_times.length ? h("ol", { class: "future" }, d.info.future_action_times.map((t) => h("li", {}, time(t)))) : h("p", { class: "muted" }, paused ? "None while paused." : "None.")),
      h(
        "section",
        {},
        h("h2", {}, "Last 10 actions"),
        recent.length
          ? table(["Scheduled for", "Taken", "Run"], recent.map((a) => h("tr", {}, h("td", {}, time(a.schedule_time)), h("td", {}, time(a.actual_time)), h("td", {}, link(runPath(ns, a.workflow_id, a.run_id), a.workflow_id)))), { "aria-label": "Recent actions" })
          : h("p", { class: "muted" }, "None yet."),
      ),
    ),
    h("details", {}, h("summary", {}, "Schedule document"), json(d.schedule)),
  );
}
