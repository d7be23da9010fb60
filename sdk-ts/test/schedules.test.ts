/**
 * Schedules end to end with Temporal TS's shapes (`client.schedule.create`,
 * `getHandle` → describe/pause/unpause/trigger/backfill/update/delete,
 * `list`) against a real `baton dev --time-skipping`, whose started
 * workflows a handler on loopback runs. The first test is issue 11's
 * example written for `@temporalio/client`, imports changed.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  Client,
  Connection,
  type ScheduleDescription,
  type ScheduleHandle,
  type ScheduleSpec,
  type ScheduleSummary,
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  ServiceError,
} from "../src/client.js";
import { createHandler } from "../src/index.js";
import { type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import { workflowInfo } from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY, until } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

export async function RevenueReportWorkflow(period: string): Promise<string> {
  return `${period} revenue report for ${workflowInfo().workflowId}`;
}

async function waitFor(handle: ScheduleHandle, done: (d: ScheduleDescription) => boolean): Promise<ScheduleDescription> {
  return until(`${handle.scheduleId} to get there`, async () => {
    const d = await handle.describe();
    return done(d) ? d : undefined;
  });
}

const ids = (d: ScheduleDescription): string[] => d.info.recentActions.map((r) => r.action.workflow.workflowId);

describe("schedules with Temporal TS's shapes (issue 11)", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  let served: ServedHandler;
  let client: Client;

  before(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping();
    served = await serveHandler(createHandler({ workflows: { RevenueReportWorkflow }, signingSecret: SECRET }));
    await env.registerEndpoint("analytics", served.url, SECRET);
    client = env.client;
  });

  after(async () => {
    await served?.close();
    await env?.teardown();
  });

  test("the issue's example runs as written", async () => {
    await client.schedule.create({
      scheduleId: "daily-revenue-report",
      action: { type: "startWorkflow", workflowType: RevenueReportWorkflow, args: ["daily"], workflowId: "daily-revenue-report", taskQueue: "analytics" },
      spec: { cronExpressions: ["0 9 * * 1-5"], jitter: "5m" },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      state: { note: "weekdays 9am UTC" },
    });
    const handle = client.schedule.getHandle("daily-revenue-report");
    await handle.pause("Q2 close");
    await handle.trigger(ScheduleOverlapPolicy.ALLOW_ALL);
    await handle.backfill({ start: new Date("2025-01-05T00:00:00Z"), end: new Date("2025-01-12T00:00:00Z"), overlap: ScheduleOverlapPolicy.ALLOW_ALL });
    await handle.unpause("done");

    const d = await waitFor(handle, (x) => x.info.numActionsTaken === 6);
    assert.equal(d.scheduleId, "daily-revenue-report");
    assert.deepEqual(d.spec.cronExpressions, ["0 9 * * 1-5"]);
    assert.equal(d.spec.jitter, 5 * 60_000);
    assert.equal(d.policies.overlap, "SKIP");
    assert.deepEqual(d.state, { paused: false, note: "done" });
    assert.deepEqual(
      [d.action.workflowType, d.action.args, d.action.workflowId, d.action.taskQueue],
      ["RevenueReportWorkflow", ["daily"], "daily-revenue-report", "analytics"],
    );
    const backfilled = ids(d)
      .filter((i) => i.includes("2025-01"))
      .sort();
    assert.deepEqual(
      backfilled,
      [6, 7, 8, 9, 10].map((day) => `daily-revenue-report-2025-01-${String(day).padStart(2, "0")}T09:00:00Z`),
    );
    assert.equal(new Set(ids(d)).size, 6);
    assert.equal(d.info.nextActionTimes.length, 10);
    for (const t of d.info.nextActionTimes) {
      assert.ok(t.getUTCDay() >= 1 && t.getUTCDay() <= 5 && t.getUTCHours() === 9 && t.getUTCMinutes() < 5, t.toISOString());
    }
    for (const workflowId of ids(d)) {
      assert.equal(await client.workflow.getHandle<string>(workflowId).result(), `daily revenue report for ${workflowId}`);
    }
    await handle.delete();
  });

  test("calendars with month and weekday names, and the description as update options", async () => {
    const handle = await client.schedule.create({
      scheduleId: "office-hours",
      spec: {
        calendars: [{ hour: { start: 8, end: 18 }, minute: 30, dayOfWeek: [{ start: "MONDAY", end: "FRIDAY" }], comment: "office hours" }],
        skip: [{ month: "DECEMBER", dayOfMonth: 25, hour: "*", minute: "*" }],
        timezone: "Europe/Paris",
        startAt: new Date("2025-01-01T00:00:00Z"),
      },
      action: { type: "startWorkflow", workflowType: "RevenueReportWorkflow", args: ["hourly"], taskQueue: "analytics", workflowRunTimeout: "30m", memo: { team: "finance" } },
      policies: { overlap: ScheduleOverlapPolicy.BUFFER_ONE, catchupWindow: "10m", pauseOnFailure: true },
      state: { paused: true, note: "not yet", remainingActions: 3 },
    });
    const d = await handle.describe();
    assert.deepEqual(d.spec.calendars, [
      {
        second: [{ start: 0, end: 0, step: 1 }],
        minute: [{ start: 30, end: 30, step: 1 }],
        hour: [{ start: 8, end: 18, step: 1 }],
        dayOfMonth: [{ start: 1, end: 31, step: 1 }],
        month: [{ start: "JANUARY", end: "DECEMBER", step: 1 }],
        year: [],
        dayOfWeek: [{ start: "MONDAY", end: "FRIDAY", step: 1 }],
        comment: "office hours",
      },
    ]);
    assert.deepEqual(d.spec.skip?.[0]?.month, [{ start: "DECEMBER", end: "DECEMBER", step: 1 }]);
    assert.deepEqual(d.spec.skip?.[0]?.minute, [{ start: 0, end: 59, step: 1 }]);
    assert.equal(d.spec.timezone, "Europe/Paris");
    assert.deepEqual(d.spec.startAt, new Date("2025-01-01T00:00:00Z"));
    assert.equal(d.action.workflowId, "office-hours-workflow");
    assert.equal(d.action.workflowRunTimeout, 30 * 60_000);
    assert.deepEqual(d.action.memo, { team: "finance" });
    assert.deepEqual(d.policies, { overlap: "BUFFER_ONE", catchupWindow: 600_000, pauseOnFailure: true });
    assert.deepEqual(d.state, { paused: true, note: "not yet", remainingActions: 3 });
    assert.deepEqual(d.info.nextActionTimes, []);
    assert.equal(d.info.lastUpdatedAt, undefined);

    // Temporal's invariant: a description is valid update options as is.
    await handle.update((previous) => previous);
    const same = await handle.describe();
    assert.deepEqual([same.spec, same.action, same.policies, same.state], [d.spec, d.action, d.policies, d.state]);
    assert.ok(same.info.lastUpdatedAt instanceof Date);

    await handle.update((previous) => ({ ...previous, spec: { intervals: [{ every: "1h", offset: "15m" }] }, state: { note: "hourly" } }));
    const updated = await handle.describe();
    assert.deepEqual(updated.spec.intervals, [{ every: 3_600_000, offset: 900_000 }]);
    assert.deepEqual(updated.spec.calendars, []);
    assert.deepEqual(updated.state, { paused: false, note: "hourly" });
    const times = updated.info.nextActionTimes;
    assert.equal(times.length, 10);
    for (const t of times) assert.equal(t.getUTCMinutes(), 15);
    await assert.rejects(client.schedule.create({ scheduleId: "office-hours", spec: { cronExpressions: ["@daily"] }, action: d.action }), ScheduleAlreadyRunning);
    await handle.delete();
    await assert.rejects(handle.describe(), (err: unknown) => err instanceof ScheduleNotFoundError && err.scheduleId === "office-hours");
  });

  test("update calls the function again when the schedule changed under it", async () => {
    const scheduleId = "ts-raced";
    await client.schedule.create({
      scheduleId,
      spec: { cronExpressions: ["0 9 * * 1-5"] },
      action: { type: "startWorkflow", workflowType: RevenueReportWorkflow, args: ["daily"], taskQueue: "analytics" },
    });
    // A second client whose first update request is preceded by another
    // client's pause, so the conflict token it carries is stale.
    const conn = await Connection.connect({ address: env.address });
    const send = conn.call.bind(conn);
    let raced = false;
    conn.call = async (method, path, body) => {
      if (!raced && path.endsWith("/update")) {
        raced = true;
        await client.schedule.getHandle(scheduleId).pause("by another client");
      }
      return send(method, path, body);
    };
    const seen: ScheduleDescription[] = [];
    await new Client({ connection: conn }).schedule.getHandle(scheduleId).update((previous) => {
      seen.push(previous);
      return { ...previous, spec: { intervals: [{ every: "1h" }] } };
    });
    assert.deepEqual(
      seen.map((d) => d.state),
      [{ paused: false }, { paused: true, note: "by another client" }],
    );
    const d = await client.schedule.getHandle(scheduleId).describe();
    assert.deepEqual(d.spec.intervals, [{ every: 3_600_000, offset: 0 }]);
    assert.deepEqual(d.state, { paused: true, note: "by another client" });
    await client.schedule.getHandle(scheduleId).delete();
  });

  test("list filters by id prefix and paused state, page by page", async () => {
    const names = [0, 1, 2, 3, 4].map((i) => `ts-listed-${i}`);
    for (const [i, scheduleId] of names.entries()) {
      await client.schedule.create({
        scheduleId,
        spec: { intervals: [{ every: "1 day" }] },
        action: { type: "startWorkflow", workflowType: "RevenueReportWorkflow", args: ["x"], taskQueue: "analytics" },
        state: { paused: i % 2 === 1, note: `n${i}` },
      });
    }
    const all: ScheduleSummary[] = [];
    for await (const s of client.schedule.list({ idPrefix: "ts-listed-", pageSize: 2 })) all.push(s);
    assert.deepEqual(
      all.map((s) => [s.scheduleId, s.state.note, s.state.paused, s.action.workflowType, s.info.nextActionTimes.length]),
      names.map((n, i) => [n, `n${i}`, i % 2 === 1, "RevenueReportWorkflow", i % 2 === 1 ? 0 : 10]),
    );
    const paused: string[] = [];
    for await (const s of client.schedule.list({ idPrefix: "ts-listed-", paused: true })) paused.push(s.scheduleId);
    assert.deepEqual(paused, ["ts-listed-1", "ts-listed-3"]);
    for (const n of names) await client.schedule.getHandle(n).delete();
    for await (const s of client.schedule.list({ idPrefix: "ts-listed-" })) assert.fail(`deleted ${s.scheduleId} is listed`);
  });

  test("bad input is a 400 naming the field, and nothing is stored", async () => {
    const action = { type: "startWorkflow", workflowType: "RevenueReportWorkflow", taskQueue: "analytics" } as const;
    const cases: [ScheduleSpec, string][] = [
      [{ cronExpressions: ["0 9 * *"] }, "spec.cron_expressions[0]"],
      [{ cronExpressions: ["@daily"], timezone: "Mars/Base" }, "spec.time_zone"],
      [{ intervals: [{ every: "1m" }], jitter: "2m" }, "spec.jitter"],
    ];
    for (const [spec, field] of cases) {
      await assert.rejects(
        client.schedule.create({ scheduleId: "ts-bad", spec, action }),
        (err: unknown) => err instanceof ServiceError && err.status === 400 && err.message.includes(field),
      );
    }
    for await (const s of client.schedule.list({ idPrefix: "ts-bad" })) assert.fail(`stored ${s.scheduleId}`);
    const handle = await client.schedule.create({ scheduleId: "ts-bad", spec: { cronExpressions: ["@daily"] }, action });
    await assert.rejects(
      handle.backfill([{ start: new Date("2025-01-12T00:00:00Z"), end: new Date("2025-01-05T00:00:00Z") }]),
      (err: unknown) => err instanceof ServiceError && err.status === 400 && err.message.includes("backfills[0].end_time"),
    );
    await handle.delete();
  });

  test("time skipping moves the schedule; triggerImmediately acts at once", async () => {
    const handle = await client.schedule.create({
      scheduleId: "ts-every-hour",
      spec: { intervals: [{ every: "1h" }] },
      action: { type: "startWorkflow", workflowType: RevenueReportWorkflow, args: ["hourly"], workflowId: "ts-every-hour", taskQueue: "analytics" },
      policies: { overlap: ScheduleOverlapPolicy.ALLOW_ALL },
      state: { triggerImmediately: true },
    });
    await waitFor(handle, (d) => d.info.numActionsTaken === 1);
    await env.skipTime("3h");
    const d = await waitFor(handle, (x) => x.info.numActionsTaken === 4);
    const onTheHour = d.info.recentActions.filter((r) => /T\d\d:00:00Z$/.test(r.action.workflow.workflowId)).map((r) => r.scheduledAt.getTime());
    assert.equal(onTheHour.length, 3);
    onTheHour.sort((a, b) => a - b);
    assert.deepEqual([onTheHour[1]! - onTheHour[0]!, onTheHour[2]! - onTheHour[1]!], [3_600_000, 3_600_000]);
    for (const workflowId of ids(d)) assert.match(await client.workflow.getHandle<string>(workflowId).result(), /^hourly revenue report/);
    await handle.delete();
  });
});
