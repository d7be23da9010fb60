"""Batch operations end to end (``Client.start_batch_operation``,
``describe_batch_operation``, ``list_batch_operations``,
``stop_batch_operation``) against a real ``baton dev``, whose workflows
an App on loopback runs: a signal batch reaches each matching run once
and the workflow code sees the signal; a terminate batch closes exactly
the matching runs; a job stops midway; bad input is refused.

Needs the server binary (``cargo build --bin baton``); skipped without it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from baton import App, workflow
from baton.client import (
    BatchOperationDescription,
    BatchOperationReset,
    BatchOperationSignal,
    BatchOperationState,
    BatchOperationTermination,
    BatchResetType,
    Client,
)
from baton.exceptions import RPCError, TerminatedError, WorkflowFailureError
from baton.testing import AppServer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton

pytestmark = needs_baton


@workflow.defn
class CartWorkflow:
    def __init__(self) -> None:
        self.items: list[str] = []

    @workflow.signal
    def add(self, item: str) -> None:
        self.items.append(item)

    @workflow.run
    async def run(self, wanted: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self.items) >= wanted)
        return self.items


@pytest.fixture(scope="module")
def served(env: WorkflowEnvironment) -> Iterator[Client]:
    app = App(workflows=[CartWorkflow], signing_secret=SECRET, server_url=env.target)
    with AppServer(app) as server:
        asyncio.run(env.register_endpoint("carts", server.url, SECRET))
        yield env.client


async def _closed(client: Client, job_id: str) -> BatchOperationDescription:
    deadline = time.monotonic() + 30
    while True:
        desc = await client.describe_batch_operation(job_id)
        if desc.state != BatchOperationState.RUNNING:
            return desc
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {job_id} did not close: {desc}")
        await asyncio.sleep(0.05)


async def _start_carts(client: Client, prefix: str, n: int, wanted: int = 1) -> list[str]:
    ids = [f"{prefix}-{i}" for i in range(n)]
    for id in ids:
        await client.start_workflow(CartWorkflow.run, wanted, id=id, task_queue="carts")
    return ids


async def _first_task_done(client: Client, id: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        history = await client.get_workflow_handle(id).fetch_history()
        if any(e["event_type"] == "WorkflowTaskCompleted" for e in history.events):
            return
        assert time.monotonic() < deadline, f"{id}: no workflow task completed"
        await asyncio.sleep(0.05)


def test_a_signal_batch_reaches_each_matching_run_once(served: Client) -> None:
    async def go() -> None:
        carts = await _start_carts(served, "sig-cart", 5)
        query = 'WorkflowType = "CartWorkflow" AND WorkflowId STARTS_WITH "sig-cart-"'
        started = await served.start_batch_operation(
            query,
            BatchOperationSignal("add", ["apple"]),
            job_id="sig-carts",
            reason="promo",
            rps=100,
        )
        assert (started.job_id, started.operation, started.total_operation_count) == (
            "sig-carts",
            "signal",
            5,
        )
        desc = await _closed(served, "sig-carts")
        assert desc.state == BatchOperationState.COMPLETED
        assert (desc.complete_operation_count, desc.failure_operation_count) == (5, 0)
        assert desc.close_time is not None and desc.close_time >= desc.start_time
        for id in carts:
            # The workflow saw the signal once: it completes with one item.
            assert await served.get_workflow_handle(id).result() == ["apple"]

    asyncio.run(go())


def test_terminate_and_reset_batches_touch_only_the_matching_runs(served: Client) -> None:
    async def go() -> None:
        doomed = await _start_carts(served, "doomed", 3, wanted=9)
        kept = await _start_carts(served, "kept", 2, wanted=9)
        # A reset needs a completed workflow task to go back to.
        for id in kept:
            await _first_task_done(served, id)
        await served.start_batch_operation(
            'WorkflowId STARTS_WITH "kept-"',
            BatchOperationReset(BatchResetType.FIRST_WORKFLOW_TASK),
            job_id="reset-kept",
            reason="bad deploy",
        )
        await served.start_batch_operation(
            'WorkflowId STARTS_WITH "doomed-"',
            BatchOperationTermination(),
            job_id="doom",
            reason="cleanup",
            request_id="doom-1",
        )
        # A retry with the same request id gets the same job.
        again = await served.start_batch_operation(
            'WorkflowId STARTS_WITH "doomed-"',
            BatchOperationTermination(),
            job_id="doom",
            request_id="doom-1",
        )
        assert again.job_id == "doom"
        desc = await _closed(served, "doom")
        assert (desc.total_operation_count, desc.complete_operation_count) == (3, 3)
        for id in doomed:
            with pytest.raises(WorkflowFailureError) as failed:
                await served.get_workflow_handle(id).result()
            assert isinstance(failed.value.cause, TerminatedError)
        reset = await _closed(served, "reset-kept")
        assert reset.complete_operation_count == 2
        for id in kept:
            described = await served.get_workflow_handle(id).describe()
            assert described.status.name == "RUNNING"
        listed = [d.job_id async for d in served.list_batch_operations(page_size=1)]
        assert listed.index("doom") < listed.index("reset-kept"), "newest first"

    asyncio.run(go())


def test_a_batch_stops_midway_and_bad_input_is_refused(served: Client) -> None:
    async def go() -> None:
        await _start_carts(served, "slow", 30, wanted=9)
        await served.start_batch_operation(
            'WorkflowId STARTS_WITH "slow-"',
            BatchOperationSignal("add", ["pear"]),
            job_id="slow",
            rps=10,
        )
        deadline = time.monotonic() + 20
        while (await served.describe_batch_operation("slow")).complete_operation_count < 2:
            assert time.monotonic() < deadline, "no progress"
            await asyncio.sleep(0.05)
        asked = await served.stop_batch_operation("slow")
        assert asked.stop_requested
        desc = await _closed(served, "slow")
        assert desc.state == BatchOperationState.STOPPED
        assert 2 <= desc.complete_operation_count < 30

        with pytest.raises(RPCError) as err:
            await served.start_batch_operation("WorkflowType = ", BatchOperationTermination())
        assert err.value.status == 400 and err.value.code == "invalid_query"
        with pytest.raises(RPCError) as err:
            await served.start_batch_operation(
                'WorkflowType = "X"', BatchOperationTermination(), rps=0
            )
        assert err.value.status == 400 and "rps" in (err.value.detail or "")
        with pytest.raises(RPCError) as err:
            await served.start_batch_operation('WorkflowType = "X"', BatchOperationSignal(""))
        assert err.value.status == 400 and "signal_name" in (err.value.detail or "")
        with pytest.raises(RPCError) as err:
            await served.describe_batch_operation("nope")
        assert err.value.status == 404

    asyncio.run(go())
