"""Activity cancellation end to end, as Temporal users write it: a
heartbeating activity cancelled by its workflow with each
``ActivityCancellationType``, and by a cancellation of the whole workflow.
The running activity learns of the request from its heartbeat's answer
(docs/protocol.md §6.4) and raises ``asyncio.CancelledError``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from baton import App, activity, workflow
from baton.client import WorkflowHandle
from baton.common import WorkflowExecutionStatus
from baton.exceptions import ActivityError, CancelledError, WorkflowFailureError
from baton.testing import AppServer, WorkflowEnvironment
from baton.workflow import ActivityCancellationType
from tests.conftest import SECRET, needs_baton

pytestmark = needs_baton
QUEUE = "cancellation"

# What each activity (keyed by its workflow id) went through.
activity_log: dict[str, list[str]] = {}


@activity.defn
async def poll_until_cancelled(key: str) -> str:
    log = activity_log.setdefault(key, [])
    log.append("started")
    try:
        while True:
            activity.heartbeat(len(log))
            await asyncio.sleep(0.05)
    except asyncio.CancelledError:
        log.append("cancelled")
        raise


def job(cancellation_type: ActivityCancellationType) -> workflow.ActivityHandle[str]:
    return workflow.start_activity(
        poll_until_cancelled,
        workflow.info().workflow_id,
        start_to_close_timeout=timedelta(minutes=5),
        heartbeat_timeout=timedelta(seconds=1),
        cancellation_type=cancellation_type,
    )


@workflow.defn
class CancelOwnActivity:
    """Starts the activity, waits for the ``stop`` signal, cancels it."""

    def __init__(self) -> None:
        self.stopping = False

    @workflow.signal
    def stop(self) -> None:
        self.stopping = True

    @workflow.run
    async def run(self, cancellation_type: str) -> str:
        handle = job(ActivityCancellationType[cancellation_type])
        await workflow.wait_condition(lambda: self.stopping)
        handle.cancel()
        try:
            return await handle
        except ActivityError as err:
            return type(err.cause).__name__


@workflow.defn
class RunActivity:
    @workflow.run
    async def run(self) -> str:
        return await job(ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)


@pytest.fixture(scope="module")
def endpoint(env: WorkflowEnvironment) -> Iterator[None]:
    app = App(
        workflows=[CancelOwnActivity, RunActivity],
        activities=[poll_until_cancelled],
        signing_secret=SECRET,
        server_url=env.target,
    )
    with AppServer(app) as server:
        asyncio.run(env.register_endpoint(QUEUE, server.url, SECRET))
        yield


async def until(check: object, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting until {what}")


async def events(handle: WorkflowHandle[str]) -> list[str]:
    return [e["event_type"] for e in (await handle.fetch_history()).events]


@pytest.mark.usefixtures("endpoint")
@pytest.mark.parametrize(
    "cancellation_type", ["TRY_CANCEL", "WAIT_CANCELLATION_COMPLETED", "ABANDON"]
)
async def test_workflow_cancels_its_running_activity(
    cancellation_type: str, env: WorkflowEnvironment
) -> None:
    workflow_id = f"cancel-{cancellation_type}"
    handle = await env.client.start_workflow(
        CancelOwnActivity.run, cancellation_type, id=workflow_id, task_queue=QUEUE
    )
    await until(lambda: activity_log.get(workflow_id) == ["started"], "the activity runs")
    await handle.signal(CancelOwnActivity.stop)
    assert await asyncio.wait_for(handle.result(), 20) == "CancelledError"
    types = await events(handle)
    closing = types.index("WorkflowExecutionCompleted")
    if cancellation_type == "WAIT_CANCELLATION_COMPLETED":
        # The workflow waited: the activity saw the request in a heartbeat
        # answer, raised CancelledError, and the app reported it canceled.
        assert activity_log[workflow_id] == ["started", "cancelled"]
        requested = types.index("ActivityTaskCancelRequested")
        assert requested < types.index("ActivityTaskCanceled") < closing
    elif cancellation_type == "TRY_CANCEL":
        # Requested, and the workflow went on at once, in the same task.
        assert types[closing - 2 : closing + 1] == [
            "WorkflowTaskCompleted",
            "ActivityTaskCancelRequested",
            "WorkflowExecutionCompleted",
        ]
        assert "ActivityTaskCanceled" not in types
    else:
        # ABANDON asks the server nothing.
        assert "ActivityTaskCancelRequested" not in types
        assert "ActivityTaskCanceled" not in types
    # However it was cancelled, the activity stops: a heartbeat for a closed
    # run is refused (409), which cancels it too.
    await until(lambda: activity_log[workflow_id][-1] == "cancelled", "the activity stops")


@pytest.mark.usefixtures("endpoint")
async def test_cancelling_the_workflow_cancels_its_running_activity(
    env: WorkflowEnvironment,
) -> None:
    workflow_id = "cancel-workflow"
    handle = await env.client.start_workflow(RunActivity.run, id=workflow_id, task_queue=QUEUE)
    await until(lambda: activity_log.get(workflow_id) == ["started"], "the activity runs")
    await handle.cancel(reason="customer gave up")
    with pytest.raises(WorkflowFailureError) as info:
        await asyncio.wait_for(handle.result(), 20)
    assert isinstance(info.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    assert activity_log[workflow_id] == ["started", "cancelled"]
    types = await events(handle)
    order = [
        "WorkflowExecutionCancelRequested",
        "ActivityTaskCancelRequested",
        "ActivityTaskCanceled",
        "WorkflowExecutionCanceled",
    ]
    assert [t for t in types if t in order] == order
