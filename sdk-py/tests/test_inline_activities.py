"""Inline activities end to end (docs/protocol.md §5.9): a real ``baton dev
--time-skipping`` pushing workflow tasks to the SDK served by uvicorn; the
SDK runs the activities it registers inside the workflow task and goes on
with the same workflow instance, one signed checkpoint per step. Pushes are
counted at the handler; every history must replay in the Replayer.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from baton import App, activity, workflow
from baton.common import RetryPolicy
from baton.testing import AppServer, Replayer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton

pytestmark = needs_baton

QUEUE = "inline"
PLAIN_QUEUE = "inline-off"
# Inline attempts at once in the app under test: below the fifty runs at
# once of test_many_runs_at_once, so that the bound binds.
BOUND = 16
# Attempts per (workflow id, activity type), and the attempt numbers seen.
ATTEMPTS: Counter[tuple[str, str]] = Counter()
SEEN: dict[str, list[int]] = {}
# Pushes per (push type, workflow id), counted at the handler.
PUSHES: Counter[tuple[str, str]] = Counter()
GATE_OPEN = threading.Event()
GATE_ENTERED = threading.Event()


def _count(name: str) -> int:
    info = activity.info()
    key = (info.workflow_id, name)
    ATTEMPTS[key] += 1
    SEEN.setdefault(info.workflow_id, []).append(info.attempt)
    return ATTEMPTS[key]


@activity.defn
async def add_one(n: int) -> int:
    _count("add_one")
    return n + 1


@activity.defn
async def slow_add(n: int, seconds: float) -> int:
    _count("slow_add")
    await asyncio.sleep(seconds)
    return n + 1


@activity.defn
def flaky_add(n: int) -> int:
    """Sync (runs on the activity executor): its first attempt fails."""
    if _count("flaky_add") == 1:
        raise ConnectionError("first attempt fails")
    return n + 1


@activity.defn
def gate(n: int) -> int:
    """Waits until the test opens the gate (a signal comes in meanwhile)."""
    _count("gate")
    GATE_ENTERED.set()
    assert GATE_OPEN.wait(20), "the gate never opened"
    return n + 1


_STC = timedelta(seconds=10)


@workflow.defn
class InlineThreeSteps:
    @workflow.run
    async def run(self, n: int) -> dict[str, Any]:
        times = []
        for _ in range(3):
            n = await workflow.execute_activity(add_one, n, start_to_close_timeout=_STC)
            times.append(workflow.now().isoformat())
        return {"n": n, "times": times}


@workflow.defn
class InlineOptOut:
    @workflow.run
    async def run(self, n: int) -> int:
        n = await workflow.execute_activity(add_one, n, start_to_close_timeout=_STC)
        n = await workflow.execute_activity(add_one, n, start_to_close_timeout=_STC, inline=False)
        return await workflow.execute_activity(add_one, n, start_to_close_timeout=_STC)


@workflow.defn
class InlineFlaky:
    @workflow.run
    async def run(self, n: int) -> int:
        n = await workflow.execute_activity(
            flaky_add,
            n,
            start_to_close_timeout=_STC,
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )
        return await workflow.execute_activity(add_one, n, start_to_close_timeout=_STC)


@workflow.defn
class InlineSignalled:
    def __init__(self) -> None:
        self.signals: list[str] = []

    @workflow.signal
    def note(self, text: str) -> None:
        self.signals.append(text)

    @workflow.run
    async def run(self, n: int) -> dict[str, Any]:
        n = await workflow.execute_activity(gate, n, start_to_close_timeout=_STC)
        seen = list(self.signals)
        n = await workflow.execute_activity(add_one, n, start_to_close_timeout=_STC)
        return {"n": n, "seen_after_gate": seen}


@workflow.defn
class InlineSlowSteps:
    @workflow.run
    async def run(self, n: int, seconds: float) -> int:
        for _ in range(3):
            n = await workflow.execute_activity(
                slow_add, args=[n, seconds], start_to_close_timeout=_STC
            )
        return n


WORKFLOWS = [InlineThreeSteps, InlineOptOut, InlineFlaky, InlineSignalled, InlineSlowSteps]
ACTIVITIES = [add_one, slow_add, flaky_add, gate]


class Counting:
    """ASGI middleware: counts the pushes by type and workflow id."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        push = json.loads(body)
        PUSHES[(push["type"], push.get("workflow_id", ""))] += 1
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


@pytest.fixture(scope="module")
def apps(env: WorkflowEnvironment) -> Iterator[App]:
    app = App(
        workflows=WORKFLOWS,
        activities=ACTIVITIES,
        signing_secret=SECRET,
        server_url=env.target,
        max_inline_attempts=BOUND,
    )
    plain = App(
        workflows=WORKFLOWS,
        activities=ACTIVITIES,
        signing_secret=SECRET,
        server_url=env.target,
        inline_activities=False,
    )
    with AppServer(Counting(app)) as server, AppServer(Counting(plain)) as plain_server:
        asyncio.run(env.register_endpoint(QUEUE, server.url, SECRET))
        asyncio.run(env.register_endpoint(PLAIN_QUEUE, plain_server.url, SECRET))
        yield app


def _pushes(wid: str) -> tuple[int, int]:
    """(workflow task pushes, activity task pushes) of one run."""
    return PUSHES[("workflow_task", wid)], PUSHES[("activity_task", wid)]


def _types(history: Any) -> list[str]:
    return [e["event_type"] for e in history.events]


def _inline_flags(history: Any) -> list[bool]:
    return [
        bool(e["attributes"].get("inline"))
        for e in history.events
        if e["event_type"] == "ActivityTaskScheduled"
    ]


async def _history(env: WorkflowEnvironment, wid: str, cls: Any) -> Any:
    h = await env.client.get_workflow_handle(wid).fetch_history()
    await Replayer(workflows=[cls]).replay_workflow(h)
    return h


async def test_three_inline_steps_take_one_push(apps: App, env: WorkflowEnvironment) -> None:
    del apps
    result = await env.client.execute_workflow(
        InlineThreeSteps.run, 1, id="inline-three", task_queue=QUEUE
    )
    assert result["n"] == 4
    assert _pushes("inline-three") == (1, 0)
    assert ATTEMPTS[("inline-three", "add_one")] == 3
    h = await _history(env, "inline-three", InlineThreeSteps)
    types = _types(h)
    assert _inline_flags(h) == [True, True, True]
    assert types.count("ActivityTaskStarted") == 3
    assert types.count("ActivityTaskCompleted") == 3
    assert types.count("WorkflowTaskCompleted") == 4
    assert types[-1] == "WorkflowExecutionCompleted"
    # workflow.now() after each step is that step's workflow task time.
    started = [e["event_time"] for e in h.events if e["event_type"] == "WorkflowTaskStarted"][1:]
    assert [t[:23] for t in result["times"]] == [t[:23] for t in started]
    # The same history without inlining takes a push per step and per task.
    plain = await env.client.execute_workflow(
        InlineThreeSteps.run, 1, id="inline-three-off", task_queue=PLAIN_QUEUE
    )
    assert plain["n"] == 4
    assert _pushes("inline-three-off") == (4, 3)
    ph = await _history(env, "inline-three-off", InlineThreeSteps)
    assert _inline_flags(ph) == [False, False, False]
    assert [e["event_type"] for e in ph.events] == types


async def test_opt_out_per_call(apps: App, env: WorkflowEnvironment) -> None:
    del apps
    assert (
        await env.client.execute_workflow(InlineOptOut.run, 1, id="inline-optout", task_queue=QUEUE)
        == 4
    )
    h = await _history(env, "inline-optout", InlineOptOut)
    assert _inline_flags(h) == [True, False, True]
    # The opted-out activity was pushed; its result came in a pushed task,
    # which ran the third step inline again.
    assert _pushes("inline-optout") == (2, 1)


async def test_a_failed_inline_attempt_is_retried_as_a_pushed_activity(
    apps: App, env: WorkflowEnvironment
) -> None:
    del apps
    result = await env.client.execute_workflow(
        InlineFlaky.run, 1, id="inline-flaky", task_queue=QUEUE
    )
    assert result == 3
    assert ATTEMPTS[("inline-flaky", "flaky_add")] == 2
    assert SEEN["inline-flaky"][:2] == [1, 2]
    h = await _history(env, "inline-flaky", InlineFlaky)
    assert _inline_flags(h) == [True, True]
    wt, act = _pushes("inline-flaky")
    assert act == 1, "the retry is an ordinary activity push"
    assert wt == 2, "the retry's result came in a pushed task that ran step 2 inline"
    started = [
        e["attributes"]["attempt"] for e in h.events if e["event_type"] == "ActivityTaskStarted"
    ]
    assert started == [2, 1]


async def test_a_signal_during_an_inline_step(apps: App, env: WorkflowEnvironment) -> None:
    del apps
    GATE_OPEN.clear()
    GATE_ENTERED.clear()
    handle = await env.client.start_workflow(
        InlineSignalled.run, 1, id="inline-signal", task_queue=QUEUE
    )
    assert await asyncio.to_thread(GATE_ENTERED.wait, 20)
    await handle.signal(InlineSignalled.note, "hello")
    GATE_OPEN.set()
    result = await handle.result()
    # The signal came in while the step ran: the checkpoint was not
    # continued, and a pushed task saw the result and the signal together.
    assert result == {"n": 3, "seen_after_gate": ["hello"]}
    h = await _history(env, "inline-signal", InlineSignalled)
    types = _types(h)
    assert types.index("WorkflowExecutionSignaled") < types.index("ActivityTaskCompleted")
    # The first task, the signal's (while the step ran), the result's.
    assert _pushes("inline-signal")[0] >= 2
    assert _inline_flags(h) == [True, True]


async def test_opt_out_per_app(apps: App, env: WorkflowEnvironment) -> None:
    del apps
    assert (
        await env.client.execute_workflow(
            InlineOptOut.run, 1, id="inline-app-off", task_queue=PLAIN_QUEUE
        )
        == 4
    )
    h = await _history(env, "inline-app-off", InlineOptOut)
    assert _inline_flags(h) == [False, False, False]
    assert _pushes("inline-app-off") == (4, 3)


async def test_a_small_budget_stops_inlining(apps: App, env: WorkflowEnvironment) -> None:
    del apps
    # A 1 s task budget leaves less than the 1 s minimum margin: nothing
    # is inlined, every step is pushed.
    handle = await env.client.start_workflow(
        InlineThreeSteps.run,
        1,
        id="inline-small-budget",
        task_queue=QUEUE,
        task_timeout=timedelta(seconds=1),
    )
    assert (await handle.result())["n"] == 4
    h = await _history(env, "inline-small-budget", InlineThreeSteps)
    assert _inline_flags(h) == [False, False, False]
    assert _pushes("inline-small-budget") == (4, 3)
    # A 3 s budget: inlining stops 1 s before the deadline, so of three
    # 1.2 s steps the first is inlined and the last is not; the push is
    # answered in time (no timed-out task).
    handle = await env.client.start_workflow(
        InlineSlowSteps.run,
        args=[1, 1.2],
        id="inline-deadline",
        task_queue=QUEUE,
        task_timeout=timedelta(seconds=3),
    )
    assert await handle.result() == 4
    h = await _history(env, "inline-deadline", InlineSlowSteps)
    flags = _inline_flags(h)
    assert flags[0] is True and flags[-1] is False, flags
    assert "WorkflowTaskTimedOut" not in _types(h)


async def test_many_runs_at_once(apps: App, env: WorkflowEnvironment) -> None:
    ids = [f"inline-many-{i}" for i in range(50)]
    results = await asyncio.gather(
        *(
            env.client.execute_workflow(InlineThreeSteps.run, i, id=wid, task_queue=QUEUE)
            for i, wid in enumerate(ids)
        )
    )
    assert [r["n"] for r in results] == [i + 3 for i in range(50)]
    assert all(ATTEMPTS[(wid, "add_one")] == 3 for wid in ids)
    inlined = 0
    for wid in ids:
        h = await _history(env, wid, InlineThreeSteps)
        inlined += sum(_inline_flags(h))
    # At most BOUND inline attempts at once in the app: the others were
    # pushed.
    assert inlined > 0
    assert sum(_pushes(wid)[1] for wid in ids) == 150 - inlined
    inline = apps._inline
    assert inline is not None and inline.slots.free == BOUND, "every slot was given back"
