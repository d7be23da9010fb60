import assert from "node:assert/strict";
import { test } from "node:test";

test("subpath exports mirror Temporal's packages", async () => {
  const load = (spec: string): Promise<Record<string, unknown>> => import(spec) as Promise<Record<string, unknown>>;
  const root = await load("@baton/sdk");
  assert.equal(typeof root.createHandler, "function");
  assert.equal(typeof root.toNodeListener, "function");
  assert.equal(typeof root.toLambdaHandler, "function");
  const wf = await load("@baton/sdk/workflow");
  for (const name of ["proxyActivities", "sleep", "condition", "patched", "deprecatePatch", "workflowInfo", "uuid4", "ApplicationFailure", "log", "CancellationScope", "isCancellation", "ActivityCancellationType", "continueAsNew", "makeContinueAsNewFunc", "startChild", "executeChild", "getExternalWorkflowHandle", "ParentClosePolicy", "ChildWorkflowCancellationType", "ChildWorkflowFailure", "defineUpdate"]) {
    assert.ok(name in wf, `@baton/sdk/workflow exports ${name}`);
  }
  const act = await load("@baton/sdk/activity");
  for (const name of ["Context", "CompleteAsyncError", "heartbeat", "cancellationSignal"]) assert.ok(name in act, name);
  const client = await load("@baton/sdk/client");
  for (const name of ["Client", "Connection", "WorkflowExecutionAlreadyStartedError", "WorkflowFailedError"]) assert.ok(name in client, name);
  const testing = await load("@baton/sdk/testing");
  for (const name of ["TestWorkflowEnvironment", "Replayer"]) assert.ok(name in testing, name);
  const common = await load("@baton/sdk/common");
  assert.ok("ApplicationFailure" in common);
  assert.deepEqual((wf.defineQuery as (n: string) => unknown)("status"), { type: "query", name: "status" });
  for (const name of ["WorkflowQueryFailedError", "QueryNotRegisteredError"]) assert.ok(name in client, name);
  assert.deepEqual((wf.defineUpdate as (n: string) => unknown)("approve"), { type: "update", name: "approve" });
  for (const name of ["WorkflowUpdateFailedError", "WorkflowUpdateStage", "WorkflowUpdateHandle"]) assert.ok(name in client, name);
  for (const name of ["ScheduleClient", "ScheduleHandle", "ScheduleOverlapPolicy", "ScheduleAlreadyRunning", "ScheduleNotFoundError", "MONTHS", "DAYS_OF_WEEK"]) assert.ok(name in client, name);
  for (const name of ["BatchClient", "BatchResetType", "BatchOperationState"]) assert.ok(name in client, name);
});
