// A server with an API key: the UI shows nothing but the login, a wrong key
// is refused with a message, the right one opens the workflows page, and
// the key travels as a bearer token (the static files need none).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { browser, devServer, screenshot } from "./harness.js";

const KEY = "ui-test-key-0123456789";

describe("web UI login", () => {
  /** @type {Awaited<ReturnType<typeof devServer>>} */
  let env;
  /** @type {Awaited<ReturnType<typeof browser>>} */
  let b;

  before(async () => {
    env = await devServer({ args: ["--api-key", KEY] });
    b = await browser();
  });

  after(async () => {
    await b?.close();
    await env?.teardown();
  });

  test("the static files are served without a key, the API refuses without one", async () => {
    const ui = await fetch(`${env.address}/ui/namespaces/default/workflows`);
    assert.equal(ui.status, 200);
    assert.match(ui.headers.get("content-type") ?? "", /^text\/html/);
    const api = await fetch(`${env.address}/api/v1/namespaces`);
    assert.equal(api.status, 401);
  });

  test("only the login shows; a wrong key is refused, the right one lets in", async () => {
    const { page } = b;
    /** @type {string[]} */
    const bearers = [];
    page.on("request", (r) => {
      if (r.url().includes("/api/v1/")) bearers.push(r.headers().authorization ?? "");
    });
    await page.goto(`${env.address}/ui/namespaces/default/workflows`);
    await page.getByRole("form", { name: "Log in" }).waitFor();
    assert.equal(await page.locator("header.top").count(), 0);
    assert.equal(await page.locator("table.runs").count(), 0);
    await screenshot(page, "login");

    await page.locator("#api-key").fill("not-the-key");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByText("That key was refused.").waitFor();
    assert.equal(await page.locator("header.top").count(), 0);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("baton.apiKey")), null);

    await page.locator("#api-key").fill(KEY);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByRole("heading", { name: "Workflows" }).waitFor();
    assert.ok(bearers.includes(`Bearer ${KEY}`), JSON.stringify(bearers));
    assert.ok(bearers.includes("Bearer not-the-key"));

    // The key lives in the tab's session: a reload stays logged in.
    await page.reload();
    await page.getByRole("heading", { name: "Workflows" }).waitFor();
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("form", { name: "Log in" }).waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("baton.apiKey")), null);
  });
});
