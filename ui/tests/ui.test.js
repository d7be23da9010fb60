// The web UI in a real browser against a real `baton dev` with the
// TypeScript SDK's handler on loopback: the workflows list and its filters,
// run details (completed, failed after retries, waiting on a timer, parent
// and child), actions (signal, terminate, reset, start), endpoint versions
// (drain view after a move, push errors), schedules, payloads stored by
// reference, and a 5,000-event history in the event table and the timeline
// (timed, not asserted).

import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { Replayer, SECRET, browser, devServer, createHandler, rest, screenshot, serveHandler, statusIs, until } from "./harness.js";
import { Approval, Greeting, Many, Parent, Payment, Sleeper, activities, workflows } from "./workflows.js";

const QUEUE = "ui-main";

describe("web UI", () => {
  /** @type {Awaited<ReturnType<typeof devServer>>} */
  let env;
  /** @type {import("../../sdk-ts/dist/src/testing.js").ServedHandler} */
  let served;
  /** @type {Awaited<ReturnType<typeof browser>>} */
  let b;
  /** @type {import("playwright-core").Page} */
  let page;
  /** @type {string} */
  let address;
  /** @param {string} path */
  const open = async (path) => {
    await page.goto(`${address}/ui/${path}`);
  };

  before(async () => {
    env = await devServer({ timeSkipping: true });
    address = env.address;
    served = await serveHandler(createHandler({ workflows, activities, signingSecret: SECRET, serverUrl: address }));
    await env.registerEndpoint(QUEUE, served.url, SECRET);
    const wf = env.client.workflow;
    await Promise.all([
      ...[1, 2, 3].map((i) => wf.execute(Greeting, { workflowId: `ui-greet-${i}`, taskQueue: QUEUE, args: [`reader ${i}`] })),
      wf.start(Payment, { workflowId: "ui-payment", taskQueue: QUEUE }),
      wf.start(Sleeper, { workflowId: "ui-sleeper", taskQueue: QUEUE }),
      wf.execute(Parent, { workflowId: "ui-parent", taskQueue: QUEUE }),
    ]);
    await statusIs(address, "ui-payment", "FAILED");
    await until("the sleeper's timer", async () => {
      const d = await rest(address, "GET", "/namespaces/default/workflows/ui-sleeper");
      return d.pending_timers.length ? d : undefined;
    });
    b = await browser();
    page = b.page;
  });

  after(async () => {
    await b?.close();
    await served?.close();
    await env?.teardown();
  });

  test("the list shows counts, filters by status, type and query, and keeps the view in the URL", async () => {
    await open("");
    await page.waitForURL(/\/ui\/namespaces\/default\/workflows/);
    await page.locator("table.runs tbody tr").first().waitFor();
    assert.equal(await page.locator('.counts [data-status="COMPLETED"] strong').textContent(), "5");
    assert.equal(await page.locator('.counts [data-status="FAILED"] strong').textContent(), "1");
    await screenshot(page, "workflows");

    await page.locator('.counts [data-status="FAILED"]').click();
    await page.waitForURL(/status=FAILED/);
    await until("only the failed run", async () => ((await page.locator("table.runs tbody tr").count()) === 1 ? true : undefined));
    assert.equal(await page.locator("table.runs tbody tr td.wid").first().textContent(), "ui-payment");

    await page.locator("#f-status").selectOption("");
    await page.locator("#f-type").fill("Greeting");
    await page.locator("#f-id").fill("ui-greet-");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(/type=Greeting/);
    await until("the three greetings", async () => ((await page.locator("table.runs tbody tr").count()) === 3 ? true : undefined));
    const ids = await page.locator("table.runs tbody tr td.wid").allTextContents();
    assert.deepEqual(ids.sort(), ["ui-greet-1", "ui-greet-2", "ui-greet-3"]);
    // The link reproduces the view.
    const url = page.url();
    await page.goto(url);
    await until("the same view after reload", async () => ((await page.locator("table.runs tbody tr").count()) === 3 ? true : undefined));
    assert.equal(await page.locator("#f-type").inputValue(), "Greeting");

    // A free-form query, and a broken one: the problem's column is shown.
    await page.getByRole("button", { name: "Clear" }).click();
    await page.locator("#f-query").fill("WorkflowType = 'Parent' OR WorkflowId = 'ui-sleeper'");
    await page.getByRole("button", { name: "Apply" }).click();
    await until("the query's two runs", async () => ((await page.locator("table.runs tbody tr").count()) === 2 ? true : undefined));
    await page.locator("#f-query").fill("WorkflowType = 'Parent' AND Bogus = 1");
    await page.getByRole("button", { name: "Apply" }).click();
    const error = page.locator("#query-error");
    await until("the query error", async () => ((await error.textContent()) ? true : undefined));
    const text = (await error.textContent()) ?? "";
    assert.match(text, /column 29/, text);
    assert.match(text, /Bogus/, text);

    await page.getByRole("button", { name: "Clear" }).click();
    await page.locator("table.runs tbody tr").first().waitFor();

    // A phone's width: still one usable column.
    await page.setViewportSize({ width: 390, height: 844 });
    await screenshot(page, "workflows-phone");
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test("pages of runs follow the cursor and the page is in the URL", async () => {
    const wf = env.client.workflow;
    await Promise.all(Array.from({ length: 55 }, (_, i) => wf.start(Sleeper, { workflowId: `ui-page-${String(i).padStart(2, "0")}`, taskQueue: QUEUE })));
    await open("namespaces/default/workflows?id=ui-page-");
    await until("the first page", async () => ((await page.locator("table.runs tbody tr").count()) === 50 ? true : undefined));
    const first = await page.locator("table.runs tbody tr td.wid").allTextContents();
    await page.getByRole("button", { name: "Next →" }).click();
    await until("the second page", async () => ((await page.locator("table.runs tbody tr").count()) === 5 ? true : undefined));
    const second = await page.locator("table.runs tbody tr td.wid").allTextContents();
    assert.deepEqual([...first, ...second].sort(), Array.from({ length: 55 }, (_, i) => `ui-page-${String(i).padStart(2, "0")}`));
    assert.match(page.url(), /page=/);
    assert.ok(await page.getByRole("button", { name: "Next →" }).isDisabled());
    // The link opens the same page.
    await page.goto(page.url());
    await until("the second page again", async () => ((await page.locator("table.runs tbody tr").count()) === 5 ? true : undefined));
    await open("namespaces/default/workflows?id=ui-page-");
    await page.getByRole("button", { name: "Next →" }).click();
    await until("the second page", async () => ((await page.locator("table.runs tbody tr").count()) === 5 ? true : undefined));
    await page.getByRole("button", { name: "← Previous" }).click();
    await until("the first page again", async () => ((await page.locator("table.runs tbody tr").count()) === 50 ? true : undefined));
    assert.deepEqual(await page.locator("table.runs tbody tr td.wid").allTextContents(), first);
    await Promise.all(Array.from({ length: 55 }, (_, i) => rest(address, "POST", `/namespaces/default/workflows/ui-page-${String(i).padStart(2, "0")}/terminate`, { reason: "cleanup" })));
  });

  test("a completed run: summary with its result, grouped history, events and timeline", async () => {
    await open("namespaces/default/workflows/ui-greet-1");
    await page.getByRole("heading", { name: "Result" }).waitFor();
    assert.match((await page.locator("#view-summary").textContent()) ?? "", /Hello, reader 1!/);
    await screenshot(page, "run-summary");
    await page.emulateMedia({ colorScheme: "dark" });
    await screenshot(page, "run-summary-dark");
    await page.emulateMedia({ colorScheme: "light" });
    await page.locator('[data-tab="history"]').click();
    const activity = page.locator("table.history tr.k-activity");
    await activity.first().waitFor();
    assert.match((await activity.first().textContent()) ?? "", /activity greet\s*Completed/);
    await screenshot(page, "run-history");
    await page.locator('[data-tab="events"]').click();
    await page.locator("table.events tbody tr").first().waitFor();
    const events = await rest(address, "GET", "/namespaces/default/workflows/ui-greet-1/history");
    assert.equal(await page.locator("table.events tbody tr").count(), events.events.length);
    await page.locator('[data-tab="timeline"]').click();
    await page.locator(".timeline").waitFor();
    assert.equal(await page.locator(".timeline").getAttribute("data-rows"), "1");
    // Keyboard: focus the chart, move to the row, select it.
    await page.locator(".timeline").focus();
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "activity greet: Completed" }).waitFor();
    await screenshot(page, "run-timeline");

    // The downloaded history is what the SDK's replayer takes.
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download history" }).click()]);
    const file = await download.path();
    const exported = JSON.parse(await readFile(file, "utf8"));
    assert.equal(exported.workflow_id, "ui-greet-1");
    assert.deepEqual(exported.events, events.events);
    await new Replayer(workflows).replay(exported);
    await assert.rejects(new Replayer({ Greeting: Sleeper }).replay(exported));
  });

  test("payloads stored by reference are shown in place, and the downloaded history replays", async () => {
    const name = "large ".repeat(30_000);
    await env.client.workflow.execute(Greeting, { workflowId: "ui-large", taskQueue: QUEUE, args: [name] });
    const raw = await rest(address, "GET", "/namespaces/default/workflows/ui-large/history");
    assert.ok(raw.events[0].attributes.input.$baton_payload, "the server holds the input by reference");
    await open("namespaces/default/workflows/ui-large");
    await page.getByRole("heading", { name: "Result" }).waitFor();
    assert.match((await page.locator("#view-summary").textContent()) ?? "", /Hello, large large/);
    await page.locator('[data-tab="events"]').click();
    await page.locator("table.events tbody tr").first().waitFor();
    const shown = (await page.locator("table.events").textContent()) ?? "";
    assert.match(shown, /large large/);
    assert.doesNotMatch(shown, /\$baton_payload/);
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("link", { name: "Download history" }).click()]);
    const exported = JSON.parse(await readFile(await download.path(), "utf8"));
    assert.deepEqual(exported.events[0].attributes.input, [name]);
    await new Replayer(workflows).replay(exported);
  });

  test("a run that failed after retries shows its failure's cause chain and the attempts", async () => {
    await open("namespaces/default/workflows/ui-payment");
    await page.getByRole("heading", { name: "Failure" }).waitFor();
    const causes = await page.locator(".failure ol.causes > li").allTextContents();
    assert.ok(causes.length >= 2, JSON.stringify(causes));
    assert.match(causes.join("\n"), /activity charge/);
    assert.match(causes.join("\n"), /caused by .*card service down \(attempt 3\)/);
    await screenshot(page, "run-failed");
    await page.locator('[data-tab="history"]').click();
    const row = page.locator("table.history tr.k-activity").first();
    await row.waitFor();
    assert.match((await row.textContent()) ?? "", /Failed.*3 attempts/);
  });

  test("a run waiting on a timer shows it in the pending view", async () => {
    await open("namespaces/default/workflows/ui-sleeper?tab=pending");
    const timers = page.getByRole("table", { name: "Pending timers" });
    await timers.waitFor();
    const d = await rest(address, "GET", "/namespaces/default/workflows/ui-sleeper");
    const fire = d.pending_timers[0].fire_time;
    assert.equal(await timers.locator("time").first().getAttribute("datetime"), new Date(fire).toISOString());
    assert.match((await page.locator(".pending-wt, #view-pending p").first().textContent()) ?? "", /None in flight/);
    await screenshot(page, "run-pending");
  });

  test("a parent links to its child and the child back to its parent", async () => {
    await open("namespaces/default/workflows/ui-parent");
    const children = page.getByRole("table", { name: "Children" });
    await children.waitFor();
    await children.getByRole("link", { name: "ui-parent-child" }).click();
    await page.getByRole("heading", { name: /ui-parent-child/ }).waitFor();
    await page.getByRole("link", { name: /^ui-parent \// }).click();
    await page.getByRole("table", { name: "Children" }).waitFor();
    assert.match(page.url(), /workflows\/ui-parent\?/);
  });

  test("a signal sent from the UI shows in the history, and a query answers", async () => {
    await env.client.workflow.start(Approval, { workflowId: "ui-approval", taskQueue: QUEUE });
    await until("the approval's first task", async () => {
      const d = await rest(address, "GET", "/namespaces/default/workflows/ui-approval");
      return d.execution.history_length >= 4 && !d.pending_workflow_task ? d : undefined;
    });
    await open("namespaces/default/workflows/ui-approval?tab=query");
    await page.locator("#q-name").fill("status");
    await page.getByRole("button", { name: "Run query" }).click();
    await until("the query result", async () => (/"waiting"/.test((await page.locator("#q-result").textContent()) ?? "") ? true : undefined));

    await page.getByRole("button", { name: "Signal" }).click();
    await page.locator("#f-name").fill("approve");
    await page.locator("#f-input").fill('"ada"');
    await page.getByRole("button", { name: "Send signal" }).click();
    await statusIs(address, "ui-approval", "COMPLETED");
    await open("namespaces/default/workflows/ui-approval?tab=history");
    await page.locator("table.history").waitFor();
    assert.match((await page.locator("table.history").textContent()) ?? "", /WorkflowExecutionSignaled/);
    const history = await rest(address, "GET", "/namespaces/default/workflows/ui-approval/history");
    const signal = history.events.find((/** @type {any} */ e) => e.event_type === "WorkflowExecutionSignaled");
    assert.deepEqual([signal.attributes.signal_name, signal.attributes.input, signal.attributes.identity], ["approve", "ada", "baton-ui"]);
  });

  test("terminate from the UI, with a reason", async () => {
    await env.client.workflow.start(Approval, { workflowId: "ui-terminate", taskQueue: QUEUE });
    await open("namespaces/default/workflows/ui-terminate");
    await page.getByRole("button", { name: "Terminate" }).click();
    await page.locator("#f-reason").fill("tested from the browser");
    await page.getByRole("dialog").getByRole("button", { name: "Terminate" }).click();
    await statusIs(address, "ui-terminate", "TERMINATED");
    const history = await rest(address, "GET", "/namespaces/default/workflows/ui-terminate/history");
    const last = history.events[history.events.length - 1];
    assert.equal(last.event_type, "WorkflowExecutionTerminated");
    assert.equal(last.attributes.reason, "tested from the browser");
    await page.locator(".badge.s-terminated").first().waitFor();
  });

  test("an update and a cancellation from the UI", async () => {
    await env.client.workflow.start(Approval, { workflowId: "ui-cancel", taskQueue: QUEUE });
    await open("namespaces/default/workflows/ui-cancel");
    await page.getByRole("button", { name: "Update" }).click();
    await page.locator("#f-name").fill("note");
    await page.locator("#f-args").fill('"from the browser"');
    await page.getByRole("button", { name: "Send update" }).click();
    await page.getByText('Update completed: "noted from the browser"').waitFor();
    const history = await rest(address, "GET", "/namespaces/default/workflows/ui-cancel/history");
    const completed = history.events.find((/** @type {any} */ e) => e.event_type === "WorkflowExecutionUpdateCompleted");
    assert.equal(completed?.attributes.result, "noted from the browser");

    await page.getByRole("button", { name: "Cancel" }).click();
    await page.locator("#f-reason").fill("no longer needed");
    await page.getByRole("dialog").getByRole("button", { name: "Request cancellation" }).click();
    await statusIs(address, "ui-cancel", "CANCELED");
    const after = await rest(address, "GET", "/namespaces/default/workflows/ui-cancel/history");
    const requested = after.events.find((/** @type {any} */ e) => e.event_type === "WorkflowExecutionCancelRequested");
    assert.equal(requested?.attributes.cause, "no longer needed");
    // The grouped history shows the update as one row.
    await open("namespaces/default/workflows/ui-cancel?tab=history");
    assert.match((await page.locator("table.history tr.k-update").textContent()) ?? "", /update note\s*Completed/);
  });

  test("reset from the UI starts a new run from the chosen event", async () => {
    const before = await rest(address, "GET", "/namespaces/default/workflows/ui-greet-2");
    await open("namespaces/default/workflows/ui-greet-2");
    await page.getByRole("button", { name: "Reset" }).click();
    const options = await page.locator("#f-event_id option").allTextContents();
    assert.ok(options.length >= 1);
    await page.locator("#f-event_id").selectOption(options[0] ?? "");
    await page.locator("#f-reason").fill("replay from the start");
    await page.getByRole("dialog").getByRole("button", { name: "Reset" }).click();
    await page.waitForURL((u) => {
      const run = new URL(u).searchParams.get("run_id");
      return run !== null && run !== before.execution.run_id;
    });
    const after = await statusIs(address, "ui-greet-2", "COMPLETED");
    assert.notEqual(after.execution.run_id, before.execution.run_id);
    const history = await rest(address, "GET", `/namespaces/default/workflows/ui-greet-2/history?run_id=${after.execution.run_id}`);
    const failed = history.events.find((/** @type {any} */ e) => e.event_type === "WorkflowTaskFailed");
    assert.equal(failed?.attributes.cause, "RESET_WORKFLOW");
    assert.equal(failed?.attributes.failure.message, "replay from the start");
  });

  test("the start form starts a run and opens it", async () => {
    await open("namespaces/default/workflows");
    await page.getByRole("button", { name: "Start workflow" }).click();
    await page.locator("#f-workflow_type").fill("Greeting");
    await page.locator("#f-task_queue").fill(QUEUE);
    await page.locator("#f-workflow_id").fill("ui-started");
    await page.locator("#f-input").fill('"form"');
    await page.getByRole("dialog").getByRole("button", { name: "Start" }).click();
    await page.waitForURL(/workflows\/ui-started\?run_id=/);
    const d = await statusIs(address, "ui-started", "COMPLETED");
    const result = await rest(address, "GET", `/namespaces/default/workflows/ui-started/result?run_id=${d.execution.run_id}`);
    assert.equal(result.result, "Hello, form!");
    // Bad JSON is refused in the form, and nothing starts.
    await open("namespaces/default/workflows");
    await page.getByRole("button", { name: "Start workflow" }).click();
    await page.locator("#f-workflow_type").fill("Greeting");
    await page.locator("#f-task_queue").fill(QUEUE);
    await page.locator("#f-workflow_id").fill("ui-never");
    await page.locator("#f-input").fill("{nope");
    await page.getByRole("dialog").getByRole("button", { name: "Start" }).click();
    await until("the JSON error", async () => (/not valid JSON/.test((await page.getByRole("dialog").textContent()) ?? "") ? true : undefined));
    await page.keyboard.press("Escape");
    const r = await fetch(`${address}/api/v1/namespaces/default/workflows/ui-never`);
    assert.equal(r.status, 404);
  });

  test("endpoint versions: the drain view after moving runs, then deleting the drained version", async () => {
    const q = "ui-versioned";
    await env.registerEndpoint(q, served.url, SECRET, { version: "v1" });
    for (const id of ["ui-v-1", "ui-v-2"]) await env.client.workflow.start(Approval, { workflowId: id, taskQueue: q });
    for (const id of ["ui-v-1", "ui-v-2"]) {
      await until(`${id} pinned`, async () => {
        const d = await rest(address, "GET", `/namespaces/default/workflows/${id}`);
        return d.pinned_version === "v1" ? d : undefined;
      });
    }
    await env.registerEndpoint(q, served.url, SECRET, { version: "v2" });
    await open("namespaces/default/endpoints");
    const section = page.locator(`section[data-queue="${q}"]`);
    await section.waitFor();
    assert.equal((await section.locator('tr[data-version="v1"] .open-runs').textContent())?.trim(), "2");
    assert.equal((await section.locator('tr[data-version="v2"] .open-runs').textContent())?.trim(), "0");
    assert.ok(await section.locator('tr[data-version="v1"]').getByRole("button", { name: "Delete" }).isDisabled());
    await screenshot(page, "endpoints");
    await section.locator('tr[data-version="v1"]').getByRole("button", { name: "Move runs…" }).click();
    await page.locator("#f-to").selectOption("v2");
    await page.locator("#f-reason").fill("v1 retired");
    await page.getByRole("dialog").getByRole("button", { name: "Move runs" }).click();
    await until("v1 drained", async () => ((await section.locator('tr[data-version="v1"] .open-runs').textContent())?.trim() === "0" ? true : undefined));
    assert.equal((await section.locator('tr[data-version="v2"] .open-runs').textContent())?.trim(), "2");
    for (const id of ["ui-v-1", "ui-v-2"]) {
      const d = await rest(address, "GET", `/namespaces/default/workflows/${id}`);
      assert.equal(d.pinned_version, "v2");
    }
    const del = section.locator('tr[data-version="v1"]').getByRole("button", { name: "Delete" });
    assert.ok(await del.isEnabled());
    await del.click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete version" }).click();
    await until("v1 gone", async () => ((await section.locator('tr[data-version="v1"]').count()) === 0 ? true : undefined));
    const versions = await rest(address, "GET", `/namespaces/default/endpoints/${q}/versions`);
    assert.deepEqual(versions.versions.map((/** @type {any} */ v) => v.version), ["v2"]);
  });

  test("the last push errors of a misconfigured endpoint are shown", async () => {
    const q = "ui-wrong-secret";
    await env.registerEndpoint(q, served.url, "whsec_BBECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    await env.client.workflow.start(Greeting, { workflowId: "ui-unsigned", taskQueue: q, args: ["nobody"] });
    await until("a push error", async () => {
      const list = await rest(address, "GET", "/namespaces/default/endpoints");
      const ep = list.endpoints.find((/** @type {any} */ e) => e.task_queue === q);
      return ep?.last_push_errors.length ? ep : undefined;
    });
    await open("namespaces/default/endpoints");
    const cell = page.locator(`section[data-queue="${q}"] .push-errors`);
    await cell.locator("summary").click();
    assert.match((await cell.textContent()) ?? "", /HTTP 401/);
    await rest(address, "POST", "/namespaces/default/workflows/ui-unsigned/terminate", { reason: "cleanup" });
  });

  test("schedules: list, detail with the next actions, pause with a note", async () => {
    await rest(address, "POST", "/namespaces/default/schedules/ui-hourly", {
      schedule: {
        spec: { intervals: [{ every: "1h" }] },
        action: { start_workflow: { workflow_id: "ui-hourly-run", workflow_type: "Greeting", task_queue: QUEUE, input: ["schedule"] } },
      },
    });
    await open("namespaces/default/schedules");
    await page.getByRole("link", { name: "ui-hourly" }).click();
    await page.getByRole("heading", { name: "Next 10 actions" }).waitFor();
    assert.equal(await page.locator("ol.future li").count(), 10);
    assert.equal(await page.locator("p.spec").textContent(), "every hour");
    await screenshot(page, "schedule");
    await page.getByRole("button", { name: "Pause" }).click();
    await page.locator("#f-note").fill("maintenance window");
    await page.getByRole("dialog").getByRole("button", { name: "Pause" }).click();
    await page.getByRole("button", { name: "Unpause" }).waitFor();
    const d = await rest(address, "GET", "/namespaces/default/schedules/ui-hourly");
    assert.equal(d.schedule.state.paused, true);
    assert.equal(d.schedule.state.note, "maintenance window");
    // A trigger runs the action now, paused or not; the last actions list it.
    await page.getByRole("button", { name: "Trigger now" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Trigger" }).click();
    const taken = await until("the triggered action", async () => {
      const s = await rest(address, "GET", "/namespaces/default/schedules/ui-hourly");
      return s.info.recent_actions.length === 1 ? s.info.recent_actions[0] : undefined;
    });
    await open("namespaces/default/schedules/ui-hourly");
    await page.getByRole("table", { name: "Recent actions" }).getByRole("link", { name: taken.workflow_id }).waitFor();
  });

  test("a 5,000-event history renders in the event table and the timeline", async () => {
    const handle = await env.client.workflow.start(Many, { workflowId: "ui-many", taskQueue: QUEUE, args: [2500] });
    await until("the 2,500 timers", async () => {
      const d = await rest(address, "GET", "/namespaces/default/workflows/ui-many");
      return d.pending_timers.length === 2500 ? d : undefined;
    }, 60_000);
    await env.skipTime("1 minute");
    assert.equal(await handle.result(), 2500);
    const d = await rest(address, "GET", "/namespaces/default/workflows/ui-many");
    assert.ok(d.execution.history_length >= 5000, String(d.execution.history_length));

    let begun = Date.now();
    await open("namespaces/default/workflows/ui-many?tab=events");
    await page.locator("table.events tbody tr").last().waitFor({ state: "attached", timeout: 60_000 });
    const tableMs = Date.now() - begun;
    assert.equal(await page.locator("table.events tbody tr").count(), d.execution.history_length);
    const tableRender = await page.locator("#view-events").getAttribute("data-render-ms");
    console.log(`event table: ${d.execution.history_length} events shown ${tableMs} ms after navigation (rendering ${tableRender} ms)`);

    begun = Date.now();
    await page.locator('[data-tab="timeline"]').click();
    await page.locator(".timeline canvas").waitFor({ timeout: 60_000 });
    const timelineMs = Date.now() - begun;
    assert.equal(await page.locator(".timeline").getAttribute("data-rows"), "2500");
    const timelineRender = await page.locator("#view-timeline").getAttribute("data-render-ms");
    console.log(`timeline: 2500 timers shown ${timelineMs} ms after the click (rendering ${timelineRender} ms)`);
    // Scrolled half-way, the rows in view are drawn (on the next frame).
    const scrolled = await page.locator(".timeline").evaluate(
      (el) =>
        new Promise((resolve) => {
          el.scrollTop = el.scrollHeight / 2;
          requestAnimationFrame(() => requestAnimationFrame(() => resolve(el.scrollTop)));
        }),
    );
    assert.ok(Number(scrolled) > 2500 * 22 * 0.4, `scrolled to ${scrolled}`);
    await screenshot(page, "timeline-5000-events");
  });
});
