// What the browser tests share: a real `baton dev` (BATON_BINARY) on a
// free loopback port and a throwaway SQLite file, real SDK handlers on loopback,
// Debian's chromium driven by playwright-core with a fresh profile, the
// REST calls the tests check effects with, and screenshots.

import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { Client, Connection } from "../../sdk-ts/dist/src/client.js";
import { createHandler } from "../../sdk-ts/dist/src/index.js";
import { findBatonBinary, serveHandler } from "../../sdk-ts/dist/src/testing.js";
export { Replayer } from "../../sdk-ts/dist/src/testing.js";
export { createHandler, serveHandler };
import { until } from "../../sdk-ts/dist/test/e2e_helpers.js";
export { until };

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/** Where screenshots go: $BATON_ARTIFACTS_DIR, default target/ui-screenshots. */
export const ARTIFACTS = process.env.BATON_ARTIFACTS_DIR ?? path.join(root, "target", "ui-screenshots");

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A `baton dev` of this build on a free port, its database a SQLite file
 * in a fresh temporary folder (as a developer runs it; the browser aborts
 * requests when it navigates, which an in-memory database does not
 * survive), with an SDK client.
 * @param {{ timeSkipping?: boolean, args?: string[] }} [options]
 */
export async function devServer(options = {}) {
  const dir = await mkdtemp(path.join(tmpdir(), "baton-ui-dev-"));
  const port = await freePort();
  const address = `http://127.0.0.1:${port}`;
  const args = ["dev", "--db", path.join(dir, "baton.db"), "--listen", `127.0.0.1:${port}`, ...(options.args ?? [])];
  if (options.timeSkipping) args.push("--time-skipping");
  const child = spawn(findBatonBinary(), args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (/** @type {Buffer} */ c) => {
    stderr = (stderr + c.toString()).slice(-4000);
  });
  await until(
    "baton dev to answer",
    async () => {
      if (child.exitCode !== null) throw new Error(`baton dev exited with ${child.exitCode}: ${stderr}`);
      const r = await fetch(`${address}/readyz`).catch(() => undefined);
      return r?.ok ? true : undefined;
    },
    20_000,
  );
  const client = new Client({ connection: await Connection.connect({ address }) });
  return {
    address,
    client,
    /**
     * Registers `url` as the endpoint of `taskQueue` (as `version`, if given).
     * @param {string} taskQueue @param {string} url @param {string} secret @param {{ version?: string }} [o]
     */
    registerEndpoint: (taskQueue, url, secret, o = {}) =>
      rest(address, "POST", "/namespaces/default/endpoints", { task_queue: taskQueue, url, secrets: [secret], ...(o.version ? { version: o.version } : {}) }),
    /** @param {string} duration moves the server's clock forward */
    skipTime: (duration) => rest(address, "POST", "/dev/time/skip", { duration }),
    async teardown() {
      if (child.exitCode === null) {
        await new Promise((resolve) => {
          const t = setTimeout(() => child.kill("SIGKILL"), 5000);
          child.once("exit", () => {
            clearTimeout(t);
            resolve(undefined);
          });
          child.kill("SIGTERM");
        });
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

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
 * Saves the page as `<name>.png` (light), `<name>-dark.png` and, at a
 * phone's width (390×844), `<name>-phone.png`.
 * @param {import("playwright-core").Page} page
 * @param {string} name
 */
export async function screenshots(page, name) {
  await screenshot(page, name);
  await page.emulateMedia({ colorScheme: "dark" });
  await screenshot(page, `${name}-dark`);
  await page.emulateMedia({ colorScheme: "light" });
  await page.setViewportSize({ width: 390, height: 844 });
  await screenshot(page, `${name}-phone`);
  await page.setViewportSize({ width: 1280, height: 800 });
}

/**
 * A suite's set-up, as its before and after hooks: a `baton dev`, the TS
 * SDK's handler for `handler`'s workflows and activities registered as
 * `queue`'s endpoint, `seed` run against them, then a browser. The
 * returned fields are there once the before hook ran.
 * @param {string} queue
 * @param {{ workflows: Record<string, (...args: any[]) => Promise<unknown>>, activities: Record<string, (...args: any[]) => Promise<unknown>> }} handler
 * @param {(env: Awaited<ReturnType<typeof devServer>>) => Promise<void>} [seed]
 */
export function uiSuite(queue, handler, seed) {
  /** @type {Awaited<ReturnType<typeof devServer>> | undefined} */
  let env = undefined;
  /** @type {import("../../sdk-ts/dist/src/testing.js").ServedHandler | undefined} */
  let served = undefined;
  /** @type {Awaited<ReturnType<typeof browser>> | undefined} */
  let b = undefined;
  before(async () => {
    env = await devServer();
    served = await serveHandler(createHandler({ ...handler, signingSecret: SECRET, serverUrl: env.address }));
    await env.registerEndpoint(queue, served.url, SECRET);
    await seed?.(env);
    b = await browser();
  });
  after(async () => {
    await b?.close();
    await served?.close();
    await env?.teardown();
  });
  /** @template T @param {T | undefined} v @returns {T} */
  const ready = (v) => {
    if (v === undefined) throw new Error("the suite's before hook has not run");
    return v;
  };
  return {
    get env() {
      return ready(env);
    },
    get page() {
      return ready(b).page;
    },
    get address() {
      return ready(env).address;
    },
    /** @param {string} path under /ui/ */
    open: async (path) => {
      await ready(b).page.goto(`${ready(env).address}/ui/${path}`);
    },
  };
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
