/** The TypeScript side of tests/conformance/<case>/feature.py. */
import { CompleteAsyncError, Context } from "../src/activity.js";
import { ApplicationFailure } from "../src/common.js";
import { proxyActivities, sleep } from "../src/workflow.js";

// activity_answers, signing
export const answerActivities = {
  async charge(amountCents: number): Promise<Record<string, unknown>> {
    if (amountCents < 0) {
      throw ApplicationFailure.create({
        message: "card declined",
        type: "CardDeclined",
        nonRetryable: true,
        details: [{ decline_code: "insufficient_funds" }],
      });
    }
    if (amountCents === 0) {
      const err = new Error("bank unreachable");
      err.name = "ConnectionError";
      throw err;
    }
    return { charged: amountCents, attempt: Context.current().info.attempt };
  },
  async approve(_request: string): Promise<void> {
    throw new CompleteAsyncError();
  },
};

// sequential_activities
export const greetingActivities = {
  async greet(name: string): Promise<string> {
    return `Hello, ${name}`;
  },
  async farewell(name: string): Promise<string> {
    return `Goodbye, ${name}`;
  },
};

const greeting = proxyActivities<typeof greetingActivities>({ startToCloseTimeout: "10s" });

export async function Greeting(name: string): Promise<string[]> {
  const hello = await greeting.greet(name);
  const bye = await greeting.farewell(name);
  return [hello, bye];
}

// non_determinism: the deployed code starts a timer where the history has an activity.
const checkout = proxyActivities<{ charge(): Promise<string> }>({ startToCloseTimeout: "10s" });

export async function Checkout(): Promise<string> {
  await sleep(60_000);
  await checkout.charge();
  return "done";
}

export const FEATURES: Record<string, { workflows: Record<string, unknown>; activities: Record<string, unknown> }> = {
  activity_answers: { workflows: {}, activities: answerActivities },
  signing: { workflows: {}, activities: answerActivities },
  sequential_activities: { workflows: { Greeting }, activities: greetingActivities },
  non_determinism: { workflows: { Checkout }, activities: {} },
};
