import assert from "node:assert/strict";
import { test } from "node:test";
import { sign, verify } from "../src/core/signing.js";

// docs/protocol.md §3.4
const S1 = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const S2 = "whsec_//////////////////////////////////////////8=";
const BODY1 = '{"type":"activity_task","namespace":"default","activity_id":"1","attempt":1}';
const VECTORS: { secrets: string[]; id: string; ts: number; body: string; sig: string }[] = [
  {
    secrets: ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
    ts: 1614265330,
    body: '{"test": 2432232314}',
    sig: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
  },
  { secrets: [S1], id: "msg_0192f0c4a1b27c3d8e4f5a6b7c8d9e0f", ts: 1735689600, body: BODY1, sig: "v1,adGWpeHLmdIjZ9HL547kGBBLsN4s/kNIlqVvJfWshXw=" },
  {
    secrets: [S2],
    id: "msg_00000000000000000000000000000001",
    ts: 1700000000,
    body: '{"type":"workflow_task","input":"héllo ✓"}',
    sig: "v1,MxIhql8sUw2ajIRt6AZ7Lmb6OIUWk3ZhZXqf6Sz79+4=",
  },
  {
    secrets: [S1, S2],
    id: "msg_0192f0c4a1b27c3d8e4f5a6b7c8d9e0f",
    ts: 1735689600,
    body: BODY1,
    sig: "v1,adGWpeHLmdIjZ9HL547kGBBLsN4s/kNIlqVvJfWshXw= v1,bjVbt+r14pnPn3CLhV9dthPKPbpnafoQKVd9CUQfIpQ=",
  },
];

function headers(id: string, ts: number | string, sig: string): Headers {
  return new Headers({ "webhook-id": id, "webhook-timestamp": String(ts), "webhook-signature": sig });
}

test("row 2's body is 45 bytes", () => {
  assert.equal(new TextEncoder().encode(VECTORS[2]!.body).length, 45);
});

for (const [i, v] of VECTORS.entries()) {
  test(`signing vector ${i}: sign`, async () => {
    assert.equal(await sign(v.secrets, v.id, v.ts, v.body), v.sig);
  });
  test(`signing vector ${i}: verify within tolerance, refuse stale, future and altered`, async () => {
    const h = headers(v.id, v.ts, v.sig);
    for (const now of [v.ts, v.ts - 300, v.ts + 300]) assert.deepEqual(await verify(v.secrets, h, v.body, now), { ok: true });
    assert.deepEqual(await verify(v.secrets, h, v.body, v.ts + 301), { ok: false, reason: "timestamp too old" });
    assert.deepEqual(await verify(v.secrets, h, v.body, v.ts - 301), { ok: false, reason: "timestamp too new" });
    const altered = v.body.replace("{", "[");
    assert.deepEqual(await verify(v.secrets, h, altered, v.ts), { ok: false, reason: "no matching signature" });
  });
}

test("rotation: a receiver holding either secret alone accepts", async () => {
  const v = VECTORS[3]!;
  const h = headers(v.id, v.ts, v.sig);
  assert.deepEqual(await verify([S1], h, v.body, v.ts), { ok: true });
  assert.deepEqual(await verify([S2], h, v.body, v.ts), { ok: true });
});

test("secrets parse without prefix and without padding", async () => {
  const v = VECTORS[1]!;
  const bare = S1.slice("whsec_".length).replace(/=+$/, "");
  assert.equal(await sign([bare], v.id, v.ts, v.body), v.sig);
});

test("missing headers, other versions and junk entries are refused", async () => {
  const v = VECTORS[1]!;
  assert.equal((await verify([S1], new Headers(), v.body, v.ts)).ok, false);
  const other = v.sig.replace("v1,", "v1a,");
  assert.equal((await verify([S1], headers(v.id, v.ts, other), v.body, v.ts)).ok, false);
  assert.equal((await verify([S1], headers(v.id, v.ts, `v1,!!!! ${v.sig}`), v.body, v.ts)).ok, true);
  assert.equal((await verify([S1], headers(v.id, "17e8", v.sig), v.body, v.ts)).ok, false);
});
