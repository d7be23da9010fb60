// What the browser tests share: a real `baton dev` (BATON_BINARY, through
// the TypeScript SDK's test environment), real SDK handlers on loopback,
// Debian's chromium driven by playwright-core with a fresh profile, the
// REST calls the tests check effects with, and screenshots.

import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export { Replayer, TestWorkflowEnvironment, serveHandler } from "../../sdk-ts/dist/src/testing.js";
export { createHandler } from "../../sdk-ts/dist/src/index.js";
import { until } from "../../sdk-ts/dist/test/e2e_helpers.js";
export { until };

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/** Where screenshots go: $BATON_ARTIFACTS_DIR, default target/ui-screenshots. */
export const ARTIFACTS = process.env.BATON_ARTIFACTS_DIR ?? path.join(root, "target", "ui-screenshots");

/** The chromium binary: $BATON_CHROMIUM, else Debian's. */
const CHROMIUM = process.env.BATON_CHROMIUM ?? "/usr/bin/chromium";

/**
 * A browser with a fresh profile and one 1280×800 page.
 * @returns {Promise<{ page: import("playwright-core").Page, close: () => Promise<void> }>}
 */
export async function browser() {
  const profile = await mkdtemp(path.join(tmpdir(), "baton-ui-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu"],
    viewport: { width: 1280, height: 800 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  /** @type {string[]} */
  const external = [];
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.hostname !== "127.0.0.1" && u.protocol !== "blob:" && u.protocol !== "data:") external.push(r.url());
  });
  /** @type {string[]} */
  const errors = [];
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // The UI logs nothing; a refused style or script shows up here.
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) errors.push(m.text());
  });
  return {
    page,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
      if (external.length) throw new Error(`the UI made requests off the server: ${external.join(", ")}`);
      if (errors.length) throw new Error(`the UI's page reported errors:\n${errors.join("\n")}`);
    },
  };
}

/**
 * Saves a 1280×800 screenshot of the page as `<name>.png`.
 * @param {import("playwright-core").Page} page
 * @param {string} name
 */
export async function screenshot(page, name) {
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

/**
 * Calls the server's REST API.
 * @param {string} address
 * @param {string} method
 * @param {string} apiPath after /api/v1
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function rest(address, method, apiPath, body) {
  /** @type {RequestInit} */
  const init = { method, headers: { "content-type": "application/json" } };
  if (body !== undefined) init.body = JSON.stringify(body);
  const r = await fetch(`${address}/api/v1${apiPath}`, init);
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${apiPath}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/**
 * Waits until the run's status is `status` (REST describe).
 * @param {string} address
 * @param {string} workflowId
 * @param {string} status
 */
export async function statusIs(address, workflowId, status) {
  return until(`${workflowId} to be ${status}`, async () => {
    const d = await rest(address, "GET", `/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
    return d.execution.status === status ? d : undefined;
  });
}
