// End to end: custom search attributes set at start by the client and
// upserted by workflow code (replayed on the next task), found by list
// queries and shown by describe, against a real `baton dev`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { ServiceError, TypedSearchAttributes } from "../src/client.js";
import { createHandler } from "../src/index.js";
import { type ServedHandler, TestWorkflowEnvironment, serveHandler } from "../src/testing.js";
import {
  SearchAttributeType,
  defineSearchAttributeKey,
  executeChild,
  makeContinueAsNewFunc,
  proxyActivities,
  upsertSearchAttributes,
  workflowInfo,
} from "../src/workflow.js";
import { SKIP_WITHOUT_BINARY } from "./e2e_helpers.js";

const SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const QUEUE = "ts-sa";

const CUSTOMER = defineSearchAttributeKey("CustomerId", SearchAttributeType.KEYWORD);
const PRIORITY = defineSearchAttributeKey("Priority", SearchAttributeType.INT);
const TAGS = defineSearchAttributeKey("Tags", SearchAttributeType.KEYWORD_LIST);
const DUE = defineSearchAttributeKey("DueAt", SearchAttributeType.DATETIME);

const activities = {
  async timesTen(n: number): Promise<number> {
    return n * 10;
  },
};
const { timesTen } = proxyActivities<typeof activities>({ startToCloseTimeout: "10s" });

export async function Tagged(n: number): Promise<{ customer?: string; priority?: number; hasCustomer: boolean }> {
  const customer = workflowInfo().typedSearchAttributes.get(CUSTOMER);
  upsertSearchAttributes([
    { key: PRIORITY, value: n },
    { key: TAGS, value: ["ts", `n${n}`] },
  ]);
  const bigger = await timesTen(n);
  upsertSearchAttributes(n === 0 ? [{ key: PRIORITY, value: bigger }, { key: CUSTOMER, value: null }] : [{ key: PRIORITY, value: bigger }]);
  const now = workflowInfo().typedSearchAttributes;
  const out: { customer?: string; priority?: number; hasCustomer: boolean } = { hasCustomer: now.get(CUSTOMER) !== undefined };
  if (customer !== undefined) out.customer = customer;
  const priority = now.get(PRIORITY);
  if (priority !== undefined) out.priority = priority;
  return out;
}

export async function Leaf(): Promise<string[]> {
  return workflowInfo()
    .typedSearchAttributes.getAll()
    .map((p) => p.key.name)
    .sort();
}

export async function Chained(step: number): Promise<{ step: number; priority?: number; child: string[] }> {
  // Step 0 carries the attributes over; step 1 gives its own.
  if (step === 0) return makeContinueAsNewFunc<typeof Chained>()(1);
  if (step === 1) return makeContinueAsNewFunc<typeof Chained>({ typedSearchAttributes: [{ key: PRIORITY, value: 99 }] })(2);
  const child = await executeChild(Leaf, {
    workflowId: `${workflowInfo().workflowId}-leaf`,
    typedSearchAttributes: [{ key: CUSTOMER, value: "leafy" }],
  });
  const priority = workflowInfo().typedSearchAttributes.get(PRIORITY);
  return priority === undefined ? { step, child } : { step, priority, child };
}

describe("search attributes against baton dev", { skip: SKIP_WITHOUT_BINARY }, () => {
  let env: TestWorkflowEnvironment;
  let served: ServedHandler;

  before(async () => {
    env = await TestWorkflowEnvironment.createTimeSkipping();
    served = await serveHandler(createHandler({ workflows: { Tagged, Leaf, Chained }, activities, signingSecret: SECRET, serverUrl: env.address }));
    await env.registerEndpoint(QUEUE, served.url, SECRET);
    await env.client.connection.call("POST", `/api/v1/namespaces/${env.client.namespace}/search-attributes`, {
      search_attributes: { CustomerId: "Keyword", Priority: "Int", Tags: "KeywordList", DueAt: "Datetime" },
    });
  });

  after(async () => {
    await served?.close();
    await env?.teardown();
  });

  test("set at start and upserted from workflow code: queryable and described", async () => {
    const { client } = env;
    const due = new Date("2026-11-01T12:30:00.000Z");
    const results = [];
    for (let n = 0; n < 3; n++) {
      results.push(
        await client.workflow.execute(Tagged, {
          workflowId: `ts-tagged-${n}`,
          taskQueue: QUEUE,
          args: [n],
          typedSearchAttributes: new TypedSearchAttributes([
            { key: CUSTOMER, value: `c${n % 2}` },
            { key: DUE, value: due },
          ]),
        }),
      );
    }
    assert.deepEqual(results, [
      { customer: "c0", priority: 0, hasCustomer: false },
      { customer: "c1", priority: 10, hasCustomer: true },
      { customer: "c0", priority: 20, hasCustomer: true },
    ]);
    const ids = async (query: string): Promise<string[]> => {
      const out = [];
      for await (const e of client.workflow.list({ query, pageSize: 1 })) out.push(e.workflowId);
      return out;
    };
    assert.deepEqual(await ids("CustomerId = 'c0'"), ["ts-tagged-2"]);
    assert.deepEqual(await ids("Priority >= 10 ORDER BY Priority DESC"), ["ts-tagged-2", "ts-tagged-1"]);
    assert.deepEqual((await ids("Tags = 'ts'")).sort(), ["ts-tagged-0", "ts-tagged-1", "ts-tagged-2"]);
    assert.deepEqual(await ids("Tags = 'n1'"), ["ts-tagged-1"]);
    assert.equal((await ids("DueAt = '2026-11-01T13:30:00+01:00'")).length, 3);

    const d = await client.workflow.getHandle("ts-tagged-2").describe();
    assert.equal(d.typedSearchAttributes.get(PRIORITY), 20);
    assert.deepEqual(d.typedSearchAttributes.get(DUE), due);
    assert.deepEqual(d.typedSearchAttributes.get(TAGS), ["ts", "n2"]);
    const d0 = await client.workflow.getHandle("ts-tagged-0").describe();
    assert.equal(d0.typedSearchAttributes.get(CUSTOMER), undefined);

    await assert.rejects(
      client.workflow.start(Tagged, {
        workflowId: "ts-tagged-bad",
        taskQueue: QUEUE,
        args: [5],
        typedSearchAttributes: [{ key: defineSearchAttributeKey("CustomerId", SearchAttributeType.INT), value: 5 }],
      }),
      (err: unknown) => err instanceof ServiceError && err.status === 400 && err.message.includes("CustomerId"),
    );
    await assert.rejects(ids("Nope = 'x'"), (err: unknown) => err instanceof ServiceError && err.status === 400 && err.message.includes("Nope"));
  });

  test("continue-as-new carries them unless given; a child inherits none", async () => {
    const { client } = env;
    const result = await client.workflow.execute(Chained, {
      workflowId: "ts-chained",
      taskQueue: QUEUE,
      args: [0],
      typedSearchAttributes: [
        { key: CUSTOMER, value: "ts-chain" },
        { key: PRIORITY, value: 1 },
      ],
    });
    assert.deepEqual(result, { step: 2, priority: 99, child: ["CustomerId"] });
    const ids = async (query: string): Promise<string[]> => {
      const out = [];
      for await (const e of client.workflow.list({ query })) out.push(e.workflowId);
      return out;
    };
    assert.deepEqual(await ids("CustomerId = 'leafy'"), ["ts-chained-leaf"]);
    assert.deepEqual(await ids("CustomerId = 'ts-chain'"), ["ts-chained", "ts-chained"]);
    assert.deepEqual(await ids("WorkflowId = 'ts-chained' AND Priority = 99"), ["ts-chained"]);
  });
});
