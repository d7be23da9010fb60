// The workflows and activities the browser tests run, written against the
// TypeScript SDK (its built output) and served by its handler.

import { Context } from "../../sdk-ts/dist/src/activity.js";
import { condition, defineQuery, defineSignal, defineUpdate, executeChild, proxyActivities, setHandler, sleep } from "../../sdk-ts/dist/src/workflow.js";

export const activities = {
  /** @param {string} name */
  async greet(name) {
    return `Hello, ${name}!`;
  },
  /** Fails every attempt, retryably: the run fails once the policy gives up. */
  async charge() {
    throw new Error(`card service down (attempt ${Context.current().info.attempt})`);
  },
};

const { greet } = /** @type {typeof activities} */ (proxyActivities({ startToCloseTimeout: "10s" }));
const { charge } = /** @type {typeof activities} */ (
  proxyActivities({ startToCloseTimeout: "10s", retry: { initialInterval: "100ms", backoffCoefficient: 1, maximumAttempts: 3 } })
);

/** @param {string} name */
export async function Greeting(name) {
  return greet(name);
}

export async function Payment() {
  await charge();
  return "paid";
}

export async function Sleeper() {
  await sleep("1 day");
  return "woke up";
}

export async function Parent() {
  return executeChild(Greeting, { workflowId: "ui-parent-child", args: ["child"] });
}

const approve = /** @type {import("../../sdk-ts/dist/src/workflow.js").SignalDefinition<[string]>} */ (defineSignal("approve"));
const status = /** @type {import("../../sdk-ts/dist/src/workflow.js").QueryDefinition<string>} */ (defineQuery("status"));
const note = /** @type {import("../../sdk-ts/dist/src/workflow.js").UpdateDefinition<string, [string]>} */ (defineUpdate("note"));

/** Waits for an `approve` signal, then greets the approver; a `note` update is answered meanwhile. */
export async function Approval() {
  /** @type {string | undefined} */
  let by = undefined;
  /** @type {string[]} */
  const notes = [];
  setHandler(approve, (who) => {
    by = who;
  });
  setHandler(status, () => by ?? `waiting${notes.length ? ` (${notes.join(", ")})` : ""}`);
  setHandler(note, (text) => {
    notes.push(text);
    return `noted ${text}`;
  });
  await condition(() => by !== undefined);
  return greet(by ?? "");
}

/**
 * `n` timers at once (2n events, plus the workflow tasks').
 * @param {number} n
 */
export async function Many(n) {
  await Promise.all(Array.from({ length: n }, (_, i) => sleep(`${1 + (i % 50)}s`)));
  return n;
}

export const workflows = { Greeting, Payment, Sleeper, Parent, Approval, Many };
