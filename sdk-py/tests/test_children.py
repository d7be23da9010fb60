"""Child workflows end to end, as Temporal users write them: an order
starts one fulfillment child per order line on another task queue (served
by a second App registered as another endpoint) and gathers their results;
cancelling the order terminates its children (parent close policy
TERMINATE); a signal to a child through its handle; and a cancellation
request to another workflow through an external handle.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from baton import App, activity, workflow
from baton.common import RetryPolicy
from baton.exceptions import (
    CancelledError,
    ChildWorkflowError,
    RPCError,
    WorkflowFailureError,
)
from baton.testing import AppServer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton

pytestmark = needs_baton
ORDERS = "orders-children"
FULFILLMENT = "fulfillment-children"
S = timedelta(seconds=10)


@activity.defn
async def pack(order_id: str, line: int) -> str:
    return f"packed {order_id}/{line}"


@workflow.defn
class FulfillLine:
    """A child on the fulfillment queue: packs its line, or waits for a
    ``ship`` signal first when asked to."""

    def __init__(self) -> None:
        self.shipped_by: str | None = None

    @workflow.signal
    def ship(self, by: str) -> None:
        self.shipped_by = by

    @workflow.run
    async def run(self, order_id: str, line: int, wait_for_ship: bool) -> dict[str, Any]:
        if wait_for_ship:
            await workflow.wait_condition(lambda: self.shipped_by is not None)
        packed = await workflow.execute_activity(
            pack, args=[order_id, line], start_to_close_timeout=S
        )
        parent = workflow.info().parent
        return {
            "packed": packed,
            "shipped_by": self.shipped_by,
            "parent": parent.workflow_id if parent else None,
        }


@workflow.defn
class Order:
    """Starts one child per order line and gathers their results. ``mode``:
    ``run`` (the children just pack), ``signal`` (they wait for a ``ship``
    signal the order sends), ``hold`` (they wait for a signal that never
    comes; cancelling the order abandons the wait and its parent close
    policy ends them)."""

    @workflow.run
    async def run(self, order_id: str, lines: int, mode: str) -> list[dict[str, Any]]:
        handles = [
            await workflow.start_child_workflow(
                FulfillLine.run,
                args=[order_id, line, mode != "run"],
                id=f"{order_id}-line-{line}",
                task_queue=FULFILLMENT,
                cancellation_type=workflow.ChildWorkflowCancellationType.ABANDON
                if mode == "hold"
                else workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
            for line in range(1, lines + 1)
        ]
        if mode == "signal":
            for h in handles:
                await h.signal(FulfillLine.ship, "dock-7")
        return list(await asyncio.gather(*handles))


@workflow.defn
class Supervisor:
    """Asks another workflow to cancel, and reports what a child's failure
    looks like to its parent."""

    @workflow.run
    async def run(self, target: str) -> dict[str, Any]:
        await workflow.get_external_workflow_handle(target).cancel()
        try:
            await workflow.execute_child_workflow(
                FulfillLine.run,
                args=["bad", 0, False],
                id="supervisor-missing-type",
                task_queue=ORDERS,
            )
        except ChildWorkflowError as err:
            return {"child_error": type(err.cause).__name__, "workflow_id": err.workflow_id}
        return {"child_error": None}


@workflow.defn
class Waiter:
    """Waits until it is cancelled, then closes as cancelled."""

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@pytest.fixture(scope="module")
def app_urls(env: WorkflowEnvironment) -> Iterator[tuple[str, str]]:
    orders = App(workflows=[Order, Supervisor, Waiter], signing_secret=SECRET)
    fulfillment = App(workflows=[FulfillLine], activities=[pack], signing_secret=SECRET)
    with AppServer(orders) as o, AppServer(fulfillment) as f:
        yield o.url, f.url


@pytest.fixture
async def client(env: WorkflowEnvironment, app_urls: tuple[str, str]) -> Any:
    await env.register_endpoint(ORDERS, app_urls[0], SECRET)
    await env.register_endpoint(FULFILLMENT, app_urls[1], SECRET)
    return env.client


async def wait_for_running_children(handle: Any, n: int) -> None:
    for _ in range(200):
        children = (await handle.describe()).children
        if len(children) == n and all(c["status"] == "RUNNING" for c in children):
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"the children never started: {children}")


async def test_an_order_gathers_one_child_per_line_on_another_queue(client: Any) -> None:
    handle = await client.start_workflow(
        Order.run, args=["A-17", 3, "run"], id="A-17", task_queue=ORDERS
    )
    result = await handle.result()
    assert [r["packed"] for r in result] == ["packed A-17/1", "packed A-17/2", "packed A-17/3"]
    assert {r["parent"] for r in result} == {"A-17"}
    children = (await handle.describe()).children
    assert [(c["workflow_id"], c["status"]) for c in children] == [
        ("A-17-line-1", "COMPLETED"),
        ("A-17-line-2", "COMPLETED"),
        ("A-17-line-3", "COMPLETED"),
    ]
    child = await client.get_workflow_handle("A-17-line-2").describe()
    assert child.task_queue == FULFILLMENT
    assert child.parent is not None
    assert child.parent["workflow_id"] == "A-17"
    assert child.parent["run_id"] == handle.first_execution_run_id


async def test_a_signal_reaches_a_child_through_its_handle(client: Any) -> None:
    handle = await client.start_workflow(
        Order.run, args=["B-2", 2, "signal"], id="B-2", task_queue=ORDERS
    )
    result = await handle.result()
    assert [r["shipped_by"] for r in result] == ["dock-7", "dock-7"]


async def test_cancelling_the_order_terminates_its_children(client: Any) -> None:
    handle = await client.start_workflow(
        Order.run, args=["C-3", 2, "hold"], id="C-3", task_queue=ORDERS
    )
    await wait_for_running_children(handle, 2)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert (await handle.describe()).status.value == "CANCELED"
    for line in (1, 2):
        child = client.get_workflow_handle(f"C-3-line-{line}")
        for _ in range(200):
            if (await child.describe()).status.value != "RUNNING":
                break
            await asyncio.sleep(0.05)
        assert (await child.describe()).status.value == "TERMINATED"


async def test_an_external_handle_cancels_another_workflow(client: Any) -> None:
    waiter = await client.start_workflow(Waiter.run, id="waiter-1", task_queue=ORDERS)
    supervisor = await client.start_workflow(
        Supervisor.run, "waiter-1", id="supervisor-1", task_queue=ORDERS
    )
    with pytest.raises(WorkflowFailureError):
        await waiter.result()
    assert (await waiter.describe()).status.value == "CANCELED"
    # The child runs on a queue whose App does not know its type, so it
    # never gets anywhere; terminating it shows the parent's
    # ChildWorkflowError, caused by TerminatedError.
    child = client.get_workflow_handle("supervisor-missing-type")
    for _ in range(200):
        try:
            await child.describe()
            break
        except RPCError:
            await asyncio.sleep(0.05)
    await child.terminate(reason="test")
    assert await supervisor.result() == {
        "child_error": "TerminatedError",
        "workflow_id": "supervisor-missing-type",
    }


async def test_a_cancelled_order_awaiting_its_children_closes_cancelled_and_is_not_retried(
    client: Any,
) -> None:
    # issue 10 #1: the children wait for a signal that never comes and are
    # cancelled with the order (WAIT_CANCELLATION_COMPLETED); the order's
    # gather sees ChildWorkflowError(cause=CancelledError), which ends the
    # run as cancelled, so the workflow retry policy starts nothing.
    handle = await client.start_workflow(
        Order.run,
        args=["D-4", 2, "wait"],
        id="D-4",
        task_queue=ORDERS,
        retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(milliseconds=10)),
    )
    await wait_for_running_children(handle, 2)
    await handle.cancel()
    first = client.get_workflow_handle("D-4", run_id=handle.first_execution_run_id)
    with pytest.raises(WorkflowFailureError) as info:
        await asyncio.wait_for(first.result(follow_runs=False), 20)
    assert isinstance(info.value.cause, CancelledError)
    history = await first.fetch_history()
    assert history.events[-1]["event_type"] == "WorkflowExecutionCanceled"
    latest = await client.get_workflow_handle("D-4").describe()
    assert (latest.run_id, latest.status.value) == (handle.first_execution_run_id, "CANCELED")
