/** Runs the language-neutral cases of tests/conformance (see its README). */
import assert from "node:assert/strict";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { createHandler } from "../src/index.js";
import { sign } from "../src/core/signing.js";
import { FEATURES } from "./features.js";
import { REPO_ROOT } from "./paths.js";

const CASES = path.join(REPO_ROOT, "tests", "conformance");

function withoutStackTraces(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutStackTraces);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).filter(([k]) => k !== "stack_trace").map(([k, x]) => [k, withoutStackTraces(x)]));
  }
  return v;
}

function isSubset(expected: unknown, actual: unknown): boolean {
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && expected.length === actual.length && expected.every((e, i) => isSubset(e, actual[i]));
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return false;
    const a = actual as Record<string, unknown>;
    return Object.entries(expected).every(([k, v]) => k in a && isSubset(v, a[k]));
  }
  return expected === actual;
}

interface Step {
  request: { sign?: boolean; timestamp_offset?: number; secret?: string; body: unknown };
  response: { status: number; match?: "exact" | "subset"; body: unknown };
}

const dirs = existsSync(CASES) ? readdirSync(CASES).filter((d) => existsSync(path.join(CASES, d, "case.json"))).sort() : [];

test("every conformance case has a TypeScript feature", () => {
  assert.ok(dirs.length > 0, `no cases under ${CASES}`);
  for (const d of dirs) assert.ok(FEATURES[d], `no TypeScript feature for tests/conformance/${d}`);
});

for (const dir of dirs) {
  test(`conformance: ${dir}`, async () => {
    const c = JSON.parse(readFileSync(path.join(CASES, dir, "case.json"), "utf8")) as { secret: string; steps: Step[] };
    const feature = FEATURES[dir];
    assert.ok(feature);
    const handler = createHandler({ ...feature, signingSecret: c.secret });
    for (const [i, step] of c.steps.entries()) {
      const { request: req, response: want } = step;
      const body = JSON.stringify(req.body);
      const headers = new Headers({ "content-type": "application/json" });
      if (req.sign ?? true) {
        const ts = Math.floor(Date.now() / 1000) + (req.timestamp_offset ?? 0);
        const id = `msg_conformance_${i}`;
        headers.set("webhook-id", id);
        headers.set("webhook-timestamp", String(ts));
        headers.set("webhook-signature", await sign([req.secret ?? c.secret], id, ts, body));
      }
      const resp = await handler(new Request("http://handler.test/", { method: "POST", headers, body }));
      const text = await resp.text();
      assert.equal(resp.status, want.status, `step ${i}: ${text}`);
      if (want.body === null || want.body === undefined) continue;
      const got = withoutStackTraces(JSON.parse(text));
      if (want.match === "subset") assert.ok(isSubset(want.body, got), `step ${i}: ${JSON.stringify(got)}`);
      else assert.deepEqual(got, want.body, `step ${i}`);
    }
  });
}
