"""Chains of runs end to end, as Temporal users write them: a counter that
continues as new every few iterations and keeps its state in its argument
(the client's result follows the chain), a workflow retry policy that
succeeds on the third attempt, the memo, and a reset to an earlier workflow
task that re-runs the later activities (counted in the activity service).
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from baton import App, activity, workflow
from baton.client import ResetType
from baton.common import RetryPolicy
from baton.exceptions import ApplicationError, WorkflowContinuedAsNewError, WorkflowFailureError
from baton.testing import AppServer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton

pytestmark = needs_baton
QUEUE = "chains"
S = timedelta(seconds=10)

# Executions per activity, as the activity service saw them.
executions: collections.Counter[str] = collections.Counter()


@activity.defn
async def add(total: int, n: int) -> int:
    executions["add"] += 1
    return total + n


@activity.defn
async def charge(order_id: str) -> str:
    executions["charge"] += 1
    return f"charged {order_id}"


@activity.defn
async def reserve(order_id: str) -> str:
    executions["reserve"] += 1
    return f"reserved {order_id}"


@activity.defn
async def ship(order_id: str) -> str:
    executions["ship"] += 1
    return f"shipped {order_id}"


@dataclass
class Tally:
    target: int
    iteration: int = 0
    total: int = 0
    runs: int = 1


@workflow.defn
class LoopingCounter:
    """Adds 1..target, one activity per iteration, continuing as new every
    three iterations so no history grows long."""

    @workflow.run
    async def run(self, state: Tally) -> dict[str, Any]:
        for _ in range(3):
            if state.iteration == state.target:
                break
            state.iteration += 1
            state.total = await workflow.execute_activity(
                add, args=[state.total, state.iteration], start_to_close_timeout=S
            )
        if state.iteration < state.target:
            state.runs += 1
            workflow.continue_as_new(state)
        info = workflow.info()
        return {
            "total": state.total,
            "runs": state.runs,
            "team": workflow.memo_value("team"),
            "missing": workflow.memo_value("nope", "default"),
            "first": info.first_execution_run_id,
            "continued": info.continued_run_id,
        }


@workflow.defn
class FlakyReport:
    """Fails its first two attempts; the workflow retry policy starts the
    next attempt as a new run of the chain."""

    @workflow.run
    async def run(self, name: str) -> dict[str, Any]:
        info = workflow.info()
        if info.attempt < 3:
            raise ApplicationError(f"attempt {info.attempt} failed", type="Flaky")
        if name == "fatal":
            raise ApplicationError("cannot build it", type="Fatal")
        policy = info.retry_policy
        return {
            "name": name,
            "attempt": info.attempt,
            "maximum_attempts": policy.maximum_attempts if policy else None,
        }


@workflow.defn
class Fulfillment:
    @workflow.run
    async def run(self, order_id: str) -> list[str]:
        return [
            await workflow.execute_activity(fn, order_id, start_to_close_timeout=S)
            for fn in (charge, reserve, ship)
        ]


@workflow.defn
class Mailbox:
    """Collects items; ``roll_over`` continues it as new with what it has,
    ``finish`` returns the items."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.roll = False
        self.done = False

    @workflow.signal
    def put(self, item: str) -> None:
        self.items.append(item)

    @workflow.signal
    def roll_over(self) -> None:
        self.roll = True

    @workflow.signal
    def finish(self) -> None:
        self.done = True

    @workflow.query
    def contents(self) -> dict[str, Any]:
        return {"items": self.items, "run": workflow.info().run_id}

    @workflow.update
    def count(self) -> int:
        return len(self.items)

    @workflow.run
    async def run(self, carried: list[str]) -> list[str]:
        self.items = [*carried, *self.items]
        await workflow.wait_condition(lambda: self.roll or self.done)
        if self.roll and not self.done:
            workflow.continue_as_new(self.items)
        return self.items


@pytest.fixture(scope="module")
def app_url(env: WorkflowEnvironment) -> Iterator[str]:
    app = App(
        workflows=[LoopingCounter, FlakyReport, Fulfillment, Mailbox],
        activities=[add, charge, reserve, ship],
        signing_secret=SECRET,
    )
    with AppServer(app) as server:
        yield server.url


@pytest.fixture
async def client(env: WorkflowEnvironment, app_url: str) -> Any:
    await env.register_endpoint(QUEUE, app_url, SECRET)
    return env.client


async def test_a_counter_continues_as_new_and_the_result_follows_the_chain(client: Any) -> None:
    handle = await client.start_workflow(
        LoopingCounter.run,
        Tally(target=7),
        id="counter-1",
        task_queue=QUEUE,
        memo={"team": "growth"},
    )
    result = await handle.result()
    assert result["total"] == sum(range(1, 8))
    assert result["runs"] == 3
    assert result["team"] == "growth"
    assert result["missing"] == "default"
    assert result["first"] == handle.first_execution_run_id
    assert result["continued"] not in (None, handle.first_execution_run_id)
    # The latest run carries the memo; the first run alone says it continued.
    latest = client.get_workflow_handle("counter-1")
    assert (await latest.describe()).memo == {"team": "growth"}
    with pytest.raises(WorkflowContinuedAsNewError) as err:
        await handle.result(follow_runs=False)
    assert err.value.new_execution_run_id
    runs = [w async for w in client.list_workflows(workflow_id="counter-1")]
    assert sorted(w.status.value for w in runs) == [
        "COMPLETED",
        "CONTINUED_AS_NEW",
        "CONTINUED_AS_NEW",
    ]


async def test_a_workflow_retry_policy_succeeds_on_the_third_attempt(client: Any) -> None:
    policy = RetryPolicy(
        initial_interval=timedelta(milliseconds=100),
        maximum_attempts=5,
        non_retryable_error_types=["Fatal"],
    )
    handle = await client.start_workflow(
        FlakyReport.run, "q3", id="report-1", task_queue=QUEUE, retry_policy=policy
    )
    assert await handle.result() == {"name": "q3", "attempt": 3, "maximum_attempts": 5}
    assert (await client.get_workflow_handle("report-1").describe()).attempt == 3

    # A non-retryable error type ends the chain on the attempt that raised it.
    handle = await client.start_workflow(
        FlakyReport.run, "fatal", id="report-2", task_queue=QUEUE, retry_policy=policy
    )
    with pytest.raises(WorkflowFailureError) as err:
        await handle.result()
    assert isinstance(err.value.cause, ApplicationError)
    assert err.value.cause.type == "Fatal"
    assert (await client.get_workflow_handle("report-2").describe()).attempt == 3


async def test_reset_to_an_earlier_workflow_task_reruns_the_later_activities(
    client: Any,
) -> None:
    executions.clear()
    handle = await client.start_workflow(Fulfillment.run, "A-17", id="fulfil-1", task_queue=QUEUE)
    assert await handle.result() == ["charged A-17", "reserved A-17", "shipped A-17"]
    events = (await handle.fetch_history()).events
    # The task that saw charge's result and scheduled reserve.
    point = [e["event_id"] for e in events if e["event_type"] == "WorkflowTaskCompleted"][1]
    resp = await client._call(
        "POST",
        "/workflows/fulfil-1/reset",
        {"event_id": point, "reason": "reserve had a bug"},
    )
    new_run = resp.json()["run_id"]
    latest = client.get_workflow_handle("fulfil-1")
    assert await latest.result() == ["charged A-17", "reserved A-17", "shipped A-17"]
    assert (await latest.describe()).run_id == new_run
    assert executions == {"charge": 1, "reserve": 2, "ship": 2}


async def test_a_handle_without_a_run_id_follows_continue_as_new_and_reset(client: Any) -> None:
    # issue 10 #3 and #5: the handle start_workflow returns names no run,
    # so after continue-as-new and after a reset every call reaches the
    # workflow id's latest run.
    handle = await client.start_workflow(Mailbox.run, [], id="mailbox-1", task_queue=QUEUE)
    first = handle.first_execution_run_id
    await handle.signal(Mailbox.put, "a")
    await handle.signal(Mailbox.roll_over)
    for _ in range(200):
        d = await handle.describe()
        if d.run_id != first and d.status.value == "RUNNING":
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the mailbox never continued as new")
    second = d.run_id
    await handle.signal(Mailbox.put, "b")
    assert await handle.query(Mailbox.contents) == {"items": ["a", "b"], "run": second}
    assert await handle.execute_update(Mailbox.count) == 2

    reset = await handle.reset(reason="replay the mailbox", reset_type=ResetType.LAST_WORKFLOW_TASK)
    assert reset.run_id not in (first, second)
    assert (await handle.describe()).run_id == reset.run_id
    assert (await handle.query(Mailbox.contents))["run"] == reset.run_id
    await handle.signal(Mailbox.finish)
    assert await handle.result() == ["a", "b"]
    old = client.get_workflow_handle("mailbox-1", run_id=second)
    assert (await old.describe()).status.value == "TERMINATED"


async def test_terminate_and_cancel_through_a_start_handle_reach_the_latest_run(
    client: Any,
) -> None:
    handle = await client.start_workflow(Mailbox.run, [], id="mailbox-2", task_queue=QUEUE)
    await handle.signal(Mailbox.roll_over)
    for _ in range(200):
        d = await handle.describe()
        if d.run_id != handle.first_execution_run_id and d.status.value == "RUNNING":
            break
        await asyncio.sleep(0.05)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert (await handle.describe()).status.value == "CANCELED"
