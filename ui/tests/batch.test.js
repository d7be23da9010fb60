// Batch operations in the web UI, in a real browser against a real `baton
// dev` with the TypeScript SDK's handler on loopback: select runs and
// terminate them with a reason (the others untouched), cancel every running
// run a query matches, the same with the keyboard only, the batch jobs list
// with each job's progress reaching its total, a job's page with its
// failures and a progress bar that moves on its own, and Stop.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { rest, screenshot, screenshots, statusIs, uiSuite, until } from "./harness.js";
import { Sleeper, activities, workflows } from "./workflows.js";

const QUEUE = "ui-batch";
const IDS = [1, 2, 3, 4, 5, 6].map((i) => `ui-b-${i}`);

describe("web UI batch operations", () => {
  const ui = uiSuite(QUEUE, { workflows, activities }, async (env) => {
    await Promise.all(IDS.map((id) => env.client.workflow.start(Sleeper, { workflowId: id, taskQueue: QUEUE })));
  });
  const { open } = ui;
  /** @param {number} n */
  const rowsAre = (n) => until(`${n} rows`, async () => ((await ui.page.locator("table.runs tbody tr").count()) === n ? true : undefined));
  /** @param {string} id */
  const status = async (id) => (await rest(ui.address, "GET", `/namespaces/default/workflows/${id}`)).execution.status;
  /** @param {string} id */
  const lastEvent = async (id) => {
    const h = await rest(ui.address, "GET", `/namespaces/default/workflows/${id}/history`);
    return h.events[h.events.length - 1];
  };
  /**
   * Presses `key` until the focused element is the one `name` names (its
   * aria-label or text): the keyboard's way there.
   * @param {"Tab" | "Shift+Tab"} key @param {string} name
   */
  const pressUntil = async (key, name) => {
    for (let i = 0; i < 80; i++) {
      await ui.page.keyboard.press(key);
      const focused = await ui.page.evaluate(() => {
        const el = document.activeElement;
        return el ? (el.getAttribute("aria-label") ?? el.textContent ?? "").trim() : "";
      });
      if (focused === name) return;
    }
    throw new Error(`${key} never reached “${name}”`);
  };
  /** The batch job the workflows page says it started. */
  const startedJob = async () => {
    const a = ui.page.locator("#batch-started a");
    await a.waitFor();
    const id = (await a.textContent()) ?? "";
    assert.equal(await a.getAttribute("href"), `/ui/namespaces/default/batches/${encodeURIComponent(id)}`);
    return id;
  };

  test("selected runs are terminated with the reason; the others are untouched", async () => {
    const { page, address } = ui;
    await open("namespaces/default/workflows?id=ui-b-");
    await rowsAre(6);
    // Only the running runs a filter matches can be acted on all at once.
    assert.equal(await page.getByRole("button", { name: "Terminate all matching" }).count(), 1);
    assert.ok(await page.getByRole("button", { name: "Terminate selected" }).isDisabled());
    await page.getByRole("checkbox", { name: "Select ui-b-1", exact: true }).check();
    await page.getByRole("checkbox", { name: "Select ui-b-2", exact: true }).check();
    assert.equal(await page.locator("#selected-count").textContent(), "2 runs selected");
    assert.equal(await page.locator("#select-page").evaluate((el) => /** @type {HTMLInputElement} */ (el).indeterminate), true);
    await screenshot(page, "workflows-selected");

    await page.getByRole("button", { name: "Terminate selected" }).click();
    const dialog = page.getByRole("dialog");
    assert.match((await dialog.textContent()) ?? "", /terminates the 2 selected runs/);
    // The reason is required: without one nothing starts.
    await dialog.getByRole("button", { name: "Terminate 2 runs" }).click();
    assert.ok(await dialog.isVisible());
    assert.deepEqual((await rest(address, "GET", "/namespaces/default/batches")).batches, []);
    await page.locator("#f-reason").fill("batch from the browser");
    await screenshot(page, "workflows-batch-confirm");
    await dialog.getByRole("button", { name: "Terminate 2 runs" }).click();
    const id = await startedJob();

    for (const wf of ["ui-b-1", "ui-b-2"]) {
      await statusIs(address, wf, "TERMINATED");
      const last = await lastEvent(wf);
      assert.equal(last.event_type, "WorkflowExecutionTerminated");
      assert.equal(last.attributes.reason, "batch from the browser");
    }
    const job = await until("the job to complete", async () => {
      const j = await rest(address, "GET", `/namespaces/default/batches/${encodeURIComponent(id)}`);
      return j.state === "COMPLETED" ? j : undefined;
    });
    assert.deepEqual([job.operation, job.total, job.done, job.failed, job.identity], ["terminate", 2, 2, 0, "baton-ui"]);
    assert.match(job.query, /^RunId IN \(/);
    for (const wf of ["ui-b-3", "ui-b-4", "ui-b-5", "ui-b-6"]) assert.equal(await status(wf), "RUNNING", wf);
  });

  test("every running run a query matches is cancelled, after the count is shown", async () => {
    const { page, address } = ui;
    // No filter, no "all matching": a job over the whole namespace is not one click away.
    await open("namespaces/default/workflows");
    await page.locator("table.runs tbody tr").first().waitFor();
    assert.equal(await page.getByRole("button", { name: "Cancel all matching" }).count(), 0);

    await open(`namespaces/default/workflows?${new URLSearchParams({ q: "WorkflowId IN ('ui-b-1', 'ui-b-3', 'ui-b-4')" })}`);
    await rowsAre(3);
    await page.getByRole("button", { name: "Cancel all matching" }).click();
    const dialog = page.getByRole("dialog");
    // ui-b-1 matches but is closed: the count (and the job) leave it out.
    assert.match((await dialog.textContent()) ?? "", /cancellation of the 2 running runs this view matches/);
    await page.locator("#f-reason").fill("cancelled by query");
    await dialog.getByRole("button", { name: "Request cancellation of 2 runs" }).click();
    const id = await startedJob();
    for (const wf of ["ui-b-3", "ui-b-4"]) {
      await statusIs(address, wf, "CANCELED");
      const h = await rest(address, "GET", `/namespaces/default/workflows/${wf}/history`);
      const requested = h.events.find((/** @type {any} */ e) => e.event_type === "WorkflowExecutionCancelRequested");
      assert.equal(requested?.attributes.cause, "cancelled by query");
    }
    const job = await rest(address, "GET", `/namespaces/default/batches/${encodeURIComponent(id)}`);
    assert.deepEqual([job.operation, job.total], ["cancel", 2]);
    assert.equal(job.query, "(WorkflowId IN ('ui-b-1', 'ui-b-3', 'ui-b-4')) AND ExecutionStatus = 'Running'");
    assert.equal(await status("ui-b-1"), "TERMINATED");
    for (const wf of ["ui-b-5", "ui-b-6"]) assert.equal(await status(wf), "RUNNING", wf);
  });

  test("the keyboard alone selects the page's running runs and terminates them", async () => {
    const { page, address } = ui;
    await open("namespaces/default/workflows?id=ui-b-");
    await rowsAre(6);
    // ui-b-5 and ui-b-6 are the page's only running runs: the page's box selects both.
    await pressUntil("Tab", "Select the running runs on this page");
    await page.keyboard.press("Space");
    assert.equal(await page.locator("#selected-count").textContent(), "2 runs selected");
    assert.ok(await page.getByRole("checkbox", { name: "Select ui-b-6", exact: true }).isChecked());
    await pressUntil("Shift+Tab", "Terminate selected");
    await page.keyboard.press("Enter");
    // The dialog opens with the reason focused; Enter submits it.
    await page.getByRole("dialog").waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), "f-reason");
    await page.keyboard.type("keyboard only");
    await page.keyboard.press("Enter");
    await startedJob();
    for (const wf of ["ui-b-5", "ui-b-6"]) {
      await statusIs(address, wf, "TERMINATED");
      assert.equal((await lastEvent(wf)).attributes.reason, "keyboard only");
    }
  });

  test("the batch jobs list shows each job's progress reaching its total", async () => {
    const { page } = ui;
    await open("namespaces/default/workflows");
    await page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name: "Batches" }).click();
    await page.waitForURL(/\/ui\/namespaces\/default\/batches$/);
    const rows = page.locator("table.batches tbody tr");
    await until("the three jobs, done", async () => {
      if ((await rows.count()) !== 3) return undefined;
      const reached = await page.locator("table.batches .num").evaluateAll((els) => els.map((e) => [e.getAttribute("data-reached"), e.getAttribute("data-total")]));
      return reached.every(([r, t]) => r === t && t === "2") ? true : undefined;
    });
    assert.deepEqual(await rows.locator("td:nth-child(2)").allTextContents(), ["terminate", "cancel", "terminate"]);
    assert.equal(await page.locator("table.batches .badge.s-completed").count(), 3);
    await screenshots(page, "batches");
  });

  test("a job's page lists its failures with their reasons; a missing job is an error", async () => {
    const { page, address } = ui;
    // Terminating runs that are closed already: each is a failure of the job.
    await rest(address, "POST", "/namespaces/default/batches", { batch_id: "ui-failing", query: "WorkflowId IN ('ui-b-1', 'ui-b-2')", operation: "terminate", reason: "again" });
    await open("namespaces/default/batches");
    await page.getByRole("link", { name: "ui-failing" }).click();
    await until("both runs reached", async () => ((await page.locator("#batch-counts").getAttribute("data-reached")) === "2" ? true : undefined));
    const failures = page.getByRole("table", { name: "Failures" });
    await page.locator(".badge.s-completed").waitFor();
    assert.equal(await failures.locator("tbody tr").count(), 2);
    assert.match((await failures.textContent()) ?? "", /already closed \(TERMINATED\)/);
    assert.match((await page.locator("#batch-counts").textContent()) ?? "", /0 done, 2 failed/);
    await failures.getByRole("link", { name: "ui-b-1" }).click();
    await page.waitForURL(/\/workflows\/ui-b-1\?run_id=/);
    // A job that does not exist is only the error.
    await open("namespaces/default/batches/ui-nope");
    await until("the error", async () => (/ui-nope not found/.test((await page.locator("#notice.error").textContent()) ?? "") ? true : undefined));
    assert.equal(await page.locator("#batch-progress").count(), 0);
  });

  test("a running job's bar moves without a reload, and Stop stops it", async () => {
    const { page, address, env } = ui;
    const slow = Array.from({ length: 12 }, (_, i) => `ui-slow-${String(i).padStart(2, "0")}`);
    await Promise.all(slow.map((id) => env.client.workflow.start(Sleeper, { workflowId: id, taskQueue: QUEUE })));
    await rest(address, "POST", "/namespaces/default/batches", {
      batch_id: "ui-slow",
      query: "WorkflowId STARTS_WITH 'ui-slow-' AND ExecutionStatus = 'Running'",
      operation: "terminate",
      reason: "one a second",
      rps: 1,
    });
    await open("namespaces/default/batches/ui-slow");
    await page.locator(".badge.s-running").waitFor();
    const reached = async () => Number(await page.locator("#batch-counts").getAttribute("data-reached"));
    const first = await reached();
    await until("the bar to move", async () => ((await reached()) > first && (await reached()) >= 2 ? true : undefined));
    assert.equal(await page.locator("#batch-progress").evaluate((el) => /** @type {HTMLProgressElement} */ (el).max), 12);
    await screenshots(page, "batch");

    await page.getByRole("button", { name: "Stop…" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Stop job" }).click();
    await page.locator(".badge.s-stopped").waitFor();
    assert.ok(await page.getByRole("button", { name: "Stop…" }).isHidden());
    const job = await rest(address, "GET", "/namespaces/default/batches/ui-slow");
    assert.equal(job.state, "STOPPED");
    assert.ok(job.done < 12, `done ${job.done}`);
    // What the job did and what it left alone agree with its count.
    const statuses = await Promise.all(slow.map(status));
    assert.equal(statuses.filter((s) => s === "TERMINATED").length, job.done);
    assert.equal(statuses.filter((s) => s === "RUNNING").length, 12 - job.done);
    assert.equal(await page.locator("#batch-counts").getAttribute("data-reached"), String(job.done));
  });
});
