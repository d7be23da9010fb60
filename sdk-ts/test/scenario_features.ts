/** The TypeScript side of the end-to-end scenarios in tests/conformance/<name>/scenario.json (feature.py is the Python side). */
import { Context } from "../src/activity.js";
import { ActivityFailure, ApplicationFailure } from "../src/common.js";
import { condition, continueAsNew, defineQuery, executeChild, defineSignal, proxyActivities, setHandler, sleep } from "../src/workflow.js";
import { ShoppingCart, cartActivities } from "./cart.js";

// onboarding
const onboardingActivities = {
  async create_account(user: { id: string }): Promise<string> {
    return `acct-${user.id}`;
  },
  async send_welcome_email(email: string): Promise<string> {
    return `welcome:${email}`;
  },
  async provision_workspace(account: string): Promise<string> {
    return `workspace:${account}`;
  },
  async check_in(account: string): Promise<string> {
    return `checked-in:${account}`;
  },
};
const onboarding = proxyActivities<typeof onboardingActivities>({ startToCloseTimeout: "30s" });

async function ConformanceOnboarding(user: { id: string; email: string }): Promise<unknown> {
  const account = await onboarding.create_account(user);
  const [welcome, workspace] = await Promise.all([onboarding.send_welcome_email(user.email), onboarding.provision_workspace(account)]);
  await sleep("7 days");
  const checkedIn = await onboarding.check_in(account);
  return { account, steps: [account, welcome, workspace, checkedIn] };
}

// activity_retries
const retryActivities = {
  async flaky_charge(): Promise<string> {
    const { attempt } = Context.current().info;
    if (attempt < 3) throw new Error(`bank unreachable on attempt ${attempt}`);
    return `charged on attempt ${attempt}`;
  },
  async declined_charge(): Promise<string> {
    throw ApplicationFailure.create({ message: "card declined", type: "CardDeclined", nonRetryable: true, details: [{ code: 51 }] });
  },
};
const retrying = proxyActivities<typeof retryActivities>({
  startToCloseTimeout: "10s",
  retry: { initialInterval: "100ms", backoffCoefficient: 1, maximumAttempts: 5 },
});

async function ConformanceRetries(): Promise<unknown> {
  const first = await retrying.flaky_charge();
  try {
    await retrying.declined_charge();
    return { first, declined: null };
  } catch (err) {
    if (!(err instanceof ActivityFailure) || !(err.cause instanceof ApplicationFailure)) throw err;
    const cause = err.cause;
    return {
      first,
      declined: { type: cause.type, message: cause.message, non_retryable: cause.nonRetryable, details: cause.details, retry_state: err.retryState },
    };
  }
}

// heartbeat_resume
const resumeActivities = {
  async resumable_download(total: number): Promise<unknown> {
    const ctx = Context.current();
    const start = typeof ctx.info.heartbeatDetails === "number" ? ctx.info.heartbeatDetails : 0;
    if (ctx.info.attempt === 1) {
      for (let done = start; done <= total / 2; done += 10) ctx.heartbeat(done);
      throw new Error("connection reset halfway");
    }
    return { attempt: ctx.info.attempt, resumed_from: start, total };
  },
};
const resuming = proxyActivities<typeof resumeActivities>({ startToCloseTimeout: "10s", retry: { initialInterval: "100ms", maximumAttempts: 3 } });

async function ConformanceResume(total: number): Promise<unknown> {
  return resuming.resumable_download(total);
}

// purchase_order
const poActivities = {
  async notify_approver(po: string): Promise<string> {
    return `notified:${po}`;
  },
  async submit_order(po: string): Promise<string> {
    return `submitted:${po}`;
  },
};
const po = proxyActivities<typeof poActivities>({ startToCloseTimeout: "30s" });
const approve = defineSignal<[string]>("approve");
const reject = defineSignal<[string]>("reject");
const status = defineQuery<string>("status");

async function ConformancePurchaseOrder(poId: string): Promise<unknown> {
  let state = "starting";
  let decision: { approver: string } | { reason: string } | undefined;
  setHandler(approve, (approver) => {
    decision ??= { approver };
  });
  setHandler(reject, (reason) => {
    decision ??= { reason };
  });
  setHandler(status, () => state);
  await po.notify_approver(poId);
  state = "awaiting approval";
  if (!(await condition(() => decision !== undefined, "48 hours"))) {
    state = "expired";
    return { po: poId, outcome: "expired" };
  }
  if (decision !== undefined && "reason" in decision) {
    state = "rejected";
    return { po: poId, outcome: "rejected", reason: decision.reason };
  }
  const submission = await po.submit_order(poId);
  state = "approved";
  return { po: poId, outcome: "approved", by: decision?.approver, submission };
}

// update_validator: the cart of the update tests
// continue_as_new
const counterActivities = {
  async count_up(n: number): Promise<number> {
    return n + 1;
  },
};
const counter = proxyActivities<typeof counterActivities>({ startToCloseTimeout: "10s" });

async function ConformanceCounter(count: number, target: number): Promise<{ count: number }> {
  for (let i = 0; i < 3 && count < target; i++) count = await counter.count_up(count);
  if (count < target) await continueAsNew<typeof ConformanceCounter>(count, target);
  return { count };
}

// child_workflows
const childActivities = {
  async pack_line(line: string): Promise<string> {
    return `packed ${line}`;
  },
};
const packing = proxyActivities<typeof childActivities>({ startToCloseTimeout: "10s" });

async function ConformanceChild(line: string): Promise<string> {
  return packing.pack_line(line);
}

async function ConformanceParent(lines: string[]): Promise<string[]> {
  return Promise.all(lines.map((line) => executeChild(ConformanceChild, { workflowId: `conformance-child-${line}`, args: [line] })));
}

/** Workflows and activities by scenario folder. */
// inline_activities
const inlineActivities = {
  async conformance_inline_add(n: number): Promise<number> {
    return n + 1;
  },
  async conformance_pushed_add(n: number): Promise<number> {
    return n + 10;
  },
};
const inlined = proxyActivities<typeof inlineActivities>({ startToCloseTimeout: "10s" });
const pushed = proxyActivities<typeof inlineActivities>({ startToCloseTimeout: "10s", inline: false });

async function ConformanceInlineSteps(n: number): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < 2; i++) {
    n = await inlined.conformance_inline_add(n);
    seen.push(n);
  }
  n = await pushed.conformance_pushed_add(n);
  seen.push(n);
  n = await inlined.conformance_inline_add(n);
  seen.push(n);
  return seen;
}

// sticky_history: results that make the history outgrow the runner's --push-history-bytes
const stickyActivities = {
  async conformance_sticky_pad(i: number): Promise<string> {
    return `${i}:` + "x".repeat(1500);
  },
};
const padded = proxyActivities<typeof stickyActivities>({ startToCloseTimeout: "10s", inline: false });
const extra = defineSignal<[number]>("extra");
const progress = defineQuery<number>("progress");

async function ConformanceStickyHistory(n: number): Promise<[number, number]> {
  let done = 0;
  let length = 0;
  let more = 0;
  setHandler(extra, (k) => void (more += k));
  setHandler(progress, () => done);
  const step = async (): Promise<void> => {
    length += (await padded.conformance_sticky_pad(done)).length;
    done++;
  };
  while (done < n) await step();
  await sleep("1 hour");
  while (done < n + more) await step();
  return [done, length];
}

export const SCENARIO_FEATURES: Record<string, { workflows: Record<string, unknown>; activities: Record<string, unknown> }> = {
  onboarding: { workflows: { ConformanceOnboarding }, activities: onboardingActivities },
  activity_retries: { workflows: { ConformanceRetries }, activities: retryActivities },
  heartbeat_resume: { workflows: { ConformanceResume }, activities: resumeActivities },
  purchase_order: { workflows: { ConformancePurchaseOrder }, activities: poActivities },
  update_validator: { workflows: { ConformanceCart: ShoppingCart }, activities: cartActivities },
  continue_as_new: { workflows: { ConformanceCounter }, activities: counterActivities },
  child_workflows: { workflows: { ConformanceParent, ConformanceChild }, activities: childActivities },
  inline_activities: { workflows: { ConformanceInlineSteps }, activities: inlineActivities },
  sticky_history: { workflows: { ConformanceStickyHistory }, activities: stickyActivities },
};
