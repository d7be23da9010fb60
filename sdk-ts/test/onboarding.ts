/** The workflows of sdk-py/tests/histories, written in TypeScript. */
import { patched, proxyActivities, sleep } from "../src/workflow.js";

export interface User {
  id: string;
  email: string;
  plan?: string;
}

export const onboardingActivities = {
  async create_account(user: User): Promise<string> {
    return `acct-${user.id}`;
  },
  async send_welcome_email(user: User): Promise<string> {
    return `welcome:${user.email}`;
  },
  async provision_workspace(account: string): Promise<string> {
    return `workspace:${account}`;
  },
  async check_in(account: string): Promise<string> {
    return `checked-in:${account}`;
  },
  async audit(account: string): Promise<string> {
    return `audited:${account}`;
  },
  async notify(message: string): Promise<string> {
    return `sent:${message}`;
  },
};

const acts = proxyActivities<typeof onboardingActivities>({ startToCloseTimeout: "30s" });

export async function Onboarding(user: User): Promise<{ account: string; steps: string[] }> {
  const u = { ...user, plan: user.plan ?? "free" };
  const account = await acts.create_account(u);
  const steps = [account];
  const [welcome, workspace] = await Promise.all([acts.send_welcome_email(u), acts.provision_workspace(account)]);
  steps.push(welcome, workspace);
  await sleep("7 days");
  steps.push(await acts.check_in(account));
  return { account, steps };
}

export async function OnboardingPatched(user: User): Promise<{ account: string; steps: string[] }> {
  const u = { ...user, plan: user.plan ?? "free" };
  const account = await acts.create_account(u);
  const steps = [account];
  if (patched("audit-step")) steps.push(await acts.audit(account));
  const [welcome, workspace] = await Promise.all([acts.send_welcome_email(u), acts.provision_workspace(account)]);
  steps.push(welcome, workspace);
  await sleep("7 days");
  steps.push(await acts.check_in(account));
  return { account, steps };
}

/** A deliberately changed Onboarding: the week's wait moved to the front. */
export async function OnboardingChanged(user: User): Promise<{ account: string; steps: string[] }> {
  await sleep("7 days");
  return Onboarding(user);
}

const notifyActs = proxyActivities<typeof onboardingActivities>({ startToCloseTimeout: "10s" });

export async function TrialExpiry(delaysSeconds: number[]): Promise<string[]> {
  const out: string[] = [];
  for (const [i, d] of delaysSeconds.entries()) {
    await sleep(d * 1000);
    out.push(await notifyActs.notify(`reminder ${i + 1}`));
  }
  return out;
}
