import assert from "node:assert/strict";
import { test } from "node:test";
import { ApplicationFailure, errorToFailure, failureToError, formatDuration, msToNumber } from "../src/common.js";

test("durations as Temporal accepts them, written in the server's seconds form", () => {
  assert.equal(msToNumber("30s"), 30_000);
  assert.equal(msToNumber("7 days"), 604_800_000);
  assert.equal(msToNumber("1h 30m"), 5_400_000);
  assert.equal(msToNumber("500ms"), 500);
  assert.equal(msToNumber("2 minutes"), 120_000);
  assert.equal(msToNumber(1500), 1500);
  assert.equal(msToNumber("1500"), 1500);
  assert.equal(formatDuration("7 days"), "604800s");
  assert.equal(formatDuration(1500), "1.5s");
  assert.equal(formatDuration("200ms"), "0.2s");
  assert.equal(formatDuration(0.4), "0.001s");
  assert.throws(() => msToNumber("soon"), TypeError);
  assert.throws(() => msToNumber(-1), TypeError);
});

test("ApplicationFailure round-trips through the wire form", () => {
  const f = errorToFailure(ApplicationFailure.nonRetryable("declined", "CardDeclined", { code: 51 }), false);
  assert.deepEqual(f, { message: "declined", kind: "APPLICATION", type: "CardDeclined", non_retryable: true, details: [{ code: 51 }] });
  const e = failureToError(f);
  assert.ok(e instanceof ApplicationFailure);
  assert.equal(e.type, "CardDeclined");
  assert.equal(e.nonRetryable, true);
  assert.deepEqual(e.details, [{ code: 51 }]);
  const plain = new RangeError("bad");
  assert.deepEqual(errorToFailure(plain, false), { message: "bad", kind: "APPLICATION", type: "RangeError" });
});
