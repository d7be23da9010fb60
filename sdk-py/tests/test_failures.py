"""Failure kinds on the wire and in the client (issue 10 #4): when an
activity's or a child's failure fails a workflow, the recorded failure says
its kind with Temporal's info, and ``WorkflowFailureError.cause`` is an
``ActivityError`` / ``ChildWorkflowError`` caused by the right class."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from baton import App, activity, workflow
from baton.common import RetryPolicy
from baton.converter import error_to_failure, failure_to_error
from baton.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    RetryState,
    TerminatedError,
    TimeoutError,
    TimeoutType,
    WorkflowFailureError,
)
from baton.testing import AppServer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton

QUEUE = "failure-kinds"
S = timedelta(seconds=10)


@activity.defn
async def decline(card: str) -> str:
    raise ApplicationError(f"card {card} declined", {"code": 51}, type="CardDeclined")


@workflow.defn
class Pay:
    @workflow.run
    async def run(self, card: str) -> str:
        return await workflow.execute_activity(
            decline,
            card,
            start_to_close_timeout=S,
            retry_policy=RetryPolicy(
                maximum_attempts=2, initial_interval=timedelta(milliseconds=1)
            ),
        )


@workflow.defn
class Stuck:
    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


@workflow.defn
class Parent:
    @workflow.run
    async def run(self, child_id: str) -> None:
        await workflow.execute_child_workflow(Stuck.run, id=child_id, task_queue=QUEUE)


@pytest.fixture(scope="module")
def app_url(env: WorkflowEnvironment) -> Iterator[str]:
    app = App(workflows=[Pay, Stuck, Parent], activities=[decline], signing_secret=SECRET)
    with AppServer(app) as server:
        yield server.url


@pytest.fixture
async def client(env: WorkflowEnvironment, app_url: str) -> Any:
    await env.register_endpoint(QUEUE, app_url, SECRET)
    return env.client


@needs_baton
async def test_an_activity_failure_reaches_the_client_as_activity_error(client: Any) -> None:
    handle = await client.start_workflow(Pay.run, "4242", id="pay-1", task_queue=QUEUE)
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    err = info.value.cause
    assert isinstance(err, ActivityError)
    assert (err.activity_type, err.activity_id, err.retry_state) == (
        "decline",
        "1",
        RetryState.MAXIMUM_ATTEMPTS_REACHED,
    )
    assert isinstance(err.cause, ApplicationError)
    assert (err.cause.type, err.cause.details) == ("CardDeclined", ({"code": 51},))
    failure = (await handle.fetch_history()).events[-1]["attributes"]["failure"]
    assert failure["kind"] == "ACTIVITY"
    assert failure["activity_failure_info"]["activity_type"] == "decline"
    assert failure["activity_failure_info"]["retry_state"] == "MAXIMUM_ATTEMPTS_REACHED"
    assert failure["cause"]["kind"] == "APPLICATION"


@needs_baton
async def test_a_terminated_child_fails_the_parent_with_child_workflow_error(client: Any) -> None:
    handle = await client.start_workflow(Parent.run, "stuck-1", id="parent-1", task_queue=QUEUE)
    child = client.get_workflow_handle("stuck-1")
    for _ in range(200):
        if any(c["status"] == "RUNNING" for c in (await handle.describe()).children):
            break
        await asyncio.sleep(0.05)
    await child.terminate(reason="operator")
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    err = info.value.cause
    assert isinstance(err, ChildWorkflowError)
    assert (err.workflow_id, err.workflow_type, err.namespace) == ("stuck-1", "Stuck", "default")
    assert isinstance(err.cause, TerminatedError)
    failure = (await handle.fetch_history()).events[-1]["attributes"]["failure"]
    assert failure["kind"] == "CHILD_WORKFLOW_EXECUTION"
    assert failure["child_workflow_execution_failure_info"]["workflow_id"] == "stuck-1"
    assert failure["cause"]["kind"] == "TERMINATED"


def test_every_kind_round_trips_and_old_failures_still_decode() -> None:
    timeout = TimeoutError("timed out", type=TimeoutType.START_TO_CLOSE)
    cancelled = CancelledError("cancelled", "why")
    for err in (timeout, cancelled, TerminatedError("gone"), ApplicationError("x", type="T")):
        back = failure_to_error(error_to_failure(err))
        assert type(back) is type(err)
    assert error_to_failure(timeout)["kind"] == "TIMEOUT"
    assert error_to_failure(cancelled)["kind"] == "CANCELED"
    assert error_to_failure(KeyError("k"))["kind"] == "APPLICATION"
    # Histories written before kinds: no kind is an application failure,
    # unless the type is one the SDKs used for the other kinds.
    old = failure_to_error({"message": "boom", "type": "KeyError"})
    assert isinstance(old, ApplicationError) and old.type == "KeyError"
    assert isinstance(failure_to_error({"message": "t", "type": "TimeoutError"}), TimeoutError)
    legacy = failure_to_error(
        {
            "message": "a",
            "type": "ActivityError",
            "details": {"activity_type": "x", "activity_id": "7"},
        }
    )
    assert isinstance(legacy, ActivityError) and legacy.activity_id == "7"
