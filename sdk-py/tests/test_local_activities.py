"""Local activities end to end: a real ``baton dev --time-skipping`` pushing
workflow tasks to the SDK served by uvicorn; the local activities run inside
those tasks and their outcomes come back as ``LocalActivity`` markers
(docs/protocol.md §14.6). Also counts the pushes a three-step workflow
costs with local activities and with ordinary ones.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from baton import App, activity, workflow
from baton.common import RetryPolicy, WorkflowExecutionStatus
from baton.exceptions import ActivityError
from baton.testing import AppServer, Replayer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton

pytestmark = needs_baton

QUEUE = "local"
# Attempts per (workflow id, activity), to check what ran how often.
ATTEMPTS: Counter[tuple[str, str]] = Counter()
CANCELLED: list[str] = []


def _count(name: str) -> int:
    key = (activity.info().workflow_id, name)
    ATTEMPTS[key] += 1
    return ATTEMPTS[key]


@activity.defn
async def add_one(n: int) -> int:
    _count("add_one")
    return n + 1


@activity.defn
def flaky(fails: int) -> str:
    """Sync: runs on the activity executor. Fails ``fails`` times first."""
    attempt = _count("flaky")
    if attempt <= fails:
        raise ConnectionError(f"attempt {attempt} failed")
    return f"ok after {attempt} attempts"


@activity.defn
async def slow(seconds: float) -> str:
    _count("slow")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        CANCELLED.append(activity.info().workflow_id)
        raise
    return f"slept {seconds}"


@workflow.defn
class ThreeLocalSteps:
    @workflow.run
    async def run(self, n: int) -> int:
        for _ in range(3):
            n = await workflow.execute_local_activity(
                add_one, n, start_to_close_timeout=timedelta(seconds=5)
            )
        return n


@workflow.defn
class ThreeSteps:
    @workflow.run
    async def run(self, n: int) -> int:
        for _ in range(3):
            n = await workflow.execute_activity(
                add_one, n, start_to_close_timeout=timedelta(seconds=5)
            )
        return n


@workflow.defn
class FlakyLocal:
    @workflow.run
    async def run(self, fails: int, attempts: int, initial_ms: int, threshold_s: float) -> Any:
        try:
            return await workflow.execute_local_activity(
                flaky,
                fails,
                start_to_close_timeout=timedelta(seconds=5),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(milliseconds=initial_ms),
                    maximum_attempts=attempts,
                ),
                local_retry_threshold=timedelta(seconds=threshold_s),
            )
        except ActivityError as err:
            cause = err.cause
            return {
                "error": type(err).__name__,
                "retry_state": err.retry_state.value if err.retry_state else None,
                "cause": type(cause).__name__,
                "message": str(cause),
            }


@workflow.defn
class LongLocal:
    @workflow.run
    async def run(self, seconds: float) -> str:
        return await workflow.execute_local_activity(
            slow, seconds, start_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn
class CancelLocal:
    @workflow.run
    async def run(self) -> list[str]:
        long = workflow.start_local_activity(
            slow, 30.0, start_to_close_timeout=timedelta(seconds=60)
        )
        quick = await workflow.execute_local_activity(
            slow, 0.01, start_to_close_timeout=timedelta(seconds=5)
        )
        long.cancel()
        try:
            await long
            return [quick, "not cancelled"]
        except ActivityError as err:
            return [quick, type(err.cause).__name__]


WORKFLOWS = [ThreeLocalSteps, ThreeSteps, FlakyLocal, LongLocal, CancelLocal]


@pytest.fixture(scope="module")
def served(env: WorkflowEnvironment) -> Iterator[None]:
    app = App(
        workflows=WORKFLOWS,
        activities=[add_one, flaky, slow],
        signing_secret=SECRET,
        server_url=env.target,
    )
    with AppServer(app) as server:
        asyncio.run(env.register_endpoint(QUEUE, server.url, SECRET))
        yield


def _types(history: Any) -> list[str]:
    return [e["event_type"] for e in history.events]


def _markers(history: Any) -> list[dict[str, Any]]:
    return [
        e["attributes"]
        for e in history.events
        if e["event_type"] == "MarkerRecorded" and e["attributes"]["marker_name"] == "LocalActivity"
    ]


async def _replays(history: Any, workflow_cls: Any) -> None:
    await Replayer(workflows=[workflow_cls]).replay_workflow(history)


async def test_three_local_activities_take_one_workflow_task(
    served: None, env: WorkflowEnvironment
) -> None:
    del served
    client = env.client
    local = await client.execute_workflow(
        ThreeLocalSteps.run, 1, id="three-local", task_queue=QUEUE
    )
    plain = await client.execute_workflow(ThreeSteps.run, 1, id="three-plain", task_queue=QUEUE)
    assert local == plain == 4
    lh = await client.get_workflow_handle("three-local").fetch_history()
    ph = await client.get_workflow_handle("three-plain").fetch_history()
    markers = _markers(lh)
    assert [(m["details"]["activity_id"], m["details"]["result"]) for m in markers] == [
        ("1", 2),
        ("2", 3),
        ("3", 4),
    ]
    assert all(m["details"]["attempt"] == 1 for m in markers)
    assert ATTEMPTS[("three-local", "add_one")] == 3

    def pushes(h: Any) -> int:
        t = _types(h)
        return t.count("WorkflowTaskStarted") + t.count("ActivityTaskStarted")

    def commits(h: Any) -> int:
        # One commit per workflow task answer and per activity outcome.
        t = _types(h)
        return 1 + t.count("WorkflowTaskCompleted") + t.count("ActivityTaskCompleted")

    print(
        f"\n3 steps: local activities {pushes(lh)} pushes / {commits(lh)} commits / "
        f"{len(lh.events)} events; activities {pushes(ph)} pushes / {commits(ph)} commits / "
        f"{len(ph.events)} events"
    )
    assert pushes(lh) == 1 and "ActivityTaskScheduled" not in _types(lh)
    assert pushes(ph) == 7
    assert commits(lh) < commits(ph)
    await _replays(lh, ThreeLocalSteps)


async def test_retried_in_process_then_success(served: None, env: WorkflowEnvironment) -> None:
    del served
    result = await env.client.execute_workflow(
        FlakyLocal.run, args=[2, 0, 10, 60.0], id="flaky-local", task_queue=QUEUE
    )
    assert result == "ok after 3 attempts"
    h = await env.client.get_workflow_handle("flaky-local").fetch_history()
    [marker] = _markers(h)
    assert marker["details"]["attempt"] == 3
    assert "failure" not in marker or marker["failure"] is None
    # The retries stayed inside the first workflow task.
    assert _types(h).count("WorkflowTaskStarted") == 1
    await _replays(h, FlakyLocal)


async def test_failure_after_retries_is_an_activity_error(
    served: None, env: WorkflowEnvironment
) -> None:
    del served
    result = await env.client.execute_workflow(
        FlakyLocal.run, args=[99, 3, 10, 60.0], id="failing-local", task_queue=QUEUE
    )
    assert result == {
        "error": "ActivityError",
        "retry_state": "MAXIMUM_ATTEMPTS_REACHED",
        "cause": "ApplicationError",
        "message": "attempt 3 failed",
    }
    assert ATTEMPTS[("failing-local", "flaky")] == 3
    h = await env.client.get_workflow_handle("failing-local").fetch_history()
    [marker] = _markers(h)
    assert marker["failure"]["type"] == "ConnectionError"
    assert marker["details"]["retry_state"] == "MAXIMUM_ATTEMPTS_REACHED"
    await _replays(h, FlakyLocal)


async def test_a_back_off_beyond_the_threshold_waits_on_a_durable_timer(
    served: None, env: WorkflowEnvironment
) -> None:
    del served
    # Back-off 2 s > threshold 0.5 s: attempt 1's failure is recorded with
    # the back-off, a timer waits it out, attempt 2 runs in a later task.
    result = await env.client.execute_workflow(
        FlakyLocal.run, args=[1, 0, 2000, 0.5], id="backoff-local", task_queue=QUEUE
    )
    assert result == "ok after 2 attempts"
    h = await env.client.get_workflow_handle("backoff-local").fetch_history()
    first, second = _markers(h)
    assert first["details"]["attempt"] == 1 and first["details"]["backoff"] == "2s"
    assert first["failure"]["message"] == "attempt 1 failed"
    assert second["details"]["attempt"] == 2 and second["details"]["result"] == result
    assert second["details"]["original_schedule_time"] == first["details"]["original_schedule_time"]
    types = _types(h)
    assert types.index("TimerStarted") < types.index("TimerFired")
    assert types.count("WorkflowTaskStarted") == 2
    await _replays(h, FlakyLocal)


async def test_a_long_local_activity_heartbeats_the_workflow_task(
    served: None, env: WorkflowEnvironment
) -> None:
    del served
    # Task timeout 1 s: the SDK answers at 0.8 s asking for a new task at
    # once, and the attempt (2.5 s) goes on into the next tasks.
    handle = await env.client.start_workflow(
        LongLocal.run,
        2.5,
        id="long-local",
        task_queue=QUEUE,
        task_timeout=timedelta(seconds=1),
    )
    assert await handle.result() == "slept 2.5"
    h = await handle.fetch_history()
    types = _types(h)
    assert "WorkflowTaskTimedOut" not in types and "WorkflowTaskFailed" not in types
    assert types.count("WorkflowTaskCompleted") >= 3
    assert ATTEMPTS[("long-local", "slow")] == 1
    [marker] = _markers(h)
    assert marker["details"]["result"] == "slept 2.5"
    await _replays(h, LongLocal)


async def test_cancelling_a_started_local_activity(served: None, env: WorkflowEnvironment) -> None:
    del served
    result = await env.client.execute_workflow(CancelLocal.run, id="cancel-local", task_queue=QUEUE)
    assert result == ["slept 0.01", "CancelledError"]
    h = await env.client.get_workflow_handle("cancel-local").fetch_history()
    quick, long = _markers(h)
    assert quick["details"]["activity_id"] == "2"
    assert long["details"]["activity_id"] == "1" and long["failure"]["kind"] == "CANCELED"
    assert (await env.client.get_workflow_handle("cancel-local").describe()).status == (
        WorkflowExecutionStatus.COMPLETED
    )
    for _ in range(100):
        if "cancel-local" in CANCELLED:
            break
        await asyncio.sleep(0.01)
    assert "cancel-local" in CANCELLED
    await _replays(h, CancelLocal)


async def test_many_runs_with_local_activities_at_once(
    served: None, env: WorkflowEnvironment
) -> None:
    del served
    results = await asyncio.gather(
        *(
            env.client.execute_workflow(
                ThreeLocalSteps.run, i, id=f"many-local-{i}", task_queue=QUEUE
            )
            for i in range(20)
        )
    )
    assert results == [i + 3 for i in range(20)]
    assert all(ATTEMPTS[(f"many-local-{i}", "add_one")] == 3 for i in range(20))
