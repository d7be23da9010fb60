/** Helpers shared by the end-to-end suites (e2e, scenarios, cross_sdk). */
import { findBatonBinary } from "../src/testing.js";

/** The server binary, or undefined (the suites skip themselves without one). */
export const BATON_BINARY: string | undefined = (() => {
  try {
    return findBatonBinary();
  } catch {
    return undefined;
  }
})();

/** Why an end-to-end suite is skipped, or false. */
export const SKIP_WITHOUT_BINARY: string | false = BATON_BINARY === undefined ? "no baton binary (cargo build --bin baton)" : false;

/** Polls `fn` until it returns something other than undefined. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
