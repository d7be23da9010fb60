"""Where pushes run: replays of short histories on the serving loop, long
ones on the replay pool, many at once. Answers stay correct and isolated
(determinism checks still fire, context variables set by one run are not
seen by another), and a long replay does not hold up the short pushes
that arrive meanwhile."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest

from baton import App, activity, workflow
from baton.app import DEFAULT_INLINE_REPLAY_MAX_EVENTS
from baton.testing import AppServer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton
from tests.fakeserver import FakeServer
from tests.test_app import call_asgi, signed

LEAK: contextvars.ContextVar[str | None] = contextvars.ContextVar("baton_test_leak", default=None)
TIMEOUT = timedelta(seconds=30)


@activity.defn
async def echo(value: Any) -> Any:
    await asyncio.sleep(0)  # suspends, as a real activity would
    return value


@workflow.defn
class Tagged:
    """Reports what it saw of LEAK before setting it (in ``__init__``, which
    runs in the replay's context, and in the run, whose task copied that
    context before ``__init__``), and the thread its first activation ran
    on."""

    def __init__(self) -> None:
        self.seen_at_init = LEAK.get()
        LEAK.set("init")
        self.pings = 0

    @workflow.signal
    def ping(self) -> None:
        self.pings += 1

    @workflow.run
    async def run(self, tag: str) -> list[Any]:
        seen = LEAK.get()
        LEAK.set(tag)
        where = threading.current_thread().name
        first = await workflow.execute_activity(
            echo, [tag, self.seen_at_init, seen, where, self.pings], start_to_close_timeout=TIMEOUT
        )
        second = await workflow.execute_activity(echo, tag, start_to_close_timeout=TIMEOUT)
        return [first, second, LEAK.get(), self.seen_at_init]


@workflow.defn
class ReadsTheClock:
    @workflow.run
    async def run(self) -> float:
        return time.time()


def first_task(workflow_type: type, args: list[Any], *, signals: int = 0) -> bytes:
    """The body of a run's first workflow task push (after ``signals``
    signals), as the server shapes it."""
    server = FakeServer(workflow_type, args, run_id=uuid.uuid4().hex)
    for _ in range(signals):
        server.signal("ping")
    server.add("WorkflowTaskStarted", scheduled_event_id=server.wt_scheduled)
    return json.dumps(server.request(server.history)).encode()


async def push(app: App, body: bytes) -> dict[str, Any]:
    status, _, raw = await call_asgi(app, "POST", signed(body), body)
    assert status == 200, raw
    return json.loads(raw)


def scheduled_input(answer: dict[str, Any]) -> Any:
    (command,) = answer["commands"]
    assert command["command_type"] == "ScheduleActivityTask", answer
    return command["attributes"]["input"][0]


async def test_fifty_concurrent_workflow_tasks_inline_and_on_the_pool() -> None:
    # Histories longer than 10 events replay on the pool: a mix of both.
    app = App(workflows=[Tagged, ReadsTheClock], signing_secret=SECRET, inline_replay_max_events=10)
    loop_thread = threading.current_thread().name
    bodies: list[tuple[str, bytes, int]] = []
    for i in range(50):
        if i % 10 == 9:
            bodies.append(("clock", first_task(ReadsTheClock, []), 0))
        else:
            signals = 20 if i % 2 else 0
            bodies.append((f"t{i}", first_task(Tagged, [f"t{i}"], signals=signals), signals))
    answers = await asyncio.gather(*(push(app, body) for _, body, _ in bodies))
    for (tag, _, signals), answer in zip(bodies, answers, strict=True):
        if tag == "clock":
            failure = answer["failure"]
            assert failure["cause"] == "WORKFLOW_WORKER_UNHANDLED_FAILURE"
            assert failure["failure"]["type"] == "RestrictedWorkflowAccessError"
            assert "time.time()" in failure["failure"]["message"]
            continue
        got_tag, seen_at_init, seen, where, pings = scheduled_input(answer)
        assert (got_tag, seen_at_init, seen, pings) == (tag, None, None, signals)
        if signals:
            assert where.startswith("baton-workflow"), where
        else:
            assert where == loop_thread
    assert LEAK.get() is None  # nothing leaked into the serving context


@pytest.mark.parametrize(
    ("max_events", "inline"), [(3, True), (2, False), (0, False), (1000, True)]
)
async def test_the_inline_threshold_counts_history_events(max_events: int, inline: bool) -> None:
    app = App(workflows=[Tagged], signing_secret=SECRET, inline_replay_max_events=max_events)
    body = first_task(Tagged, ["x"])  # 3 events: started, task scheduled, task started
    assert len(json.loads(body)["history"]) == 3
    where = scheduled_input(await push(app, body))[3]
    assert (where == threading.current_thread().name) is inline


def test_a_negative_threshold_is_refused() -> None:
    with pytest.raises(ValueError, match="inline_replay_max_events"):
        App(workflows=[Tagged], signing_secret=SECRET, inline_replay_max_events=-1)


async def test_a_long_replay_does_not_hold_up_short_pushes() -> None:
    app = App(workflows=[Tagged], signing_secret=SECRET)
    signals = 6000
    long_body = first_task(Tagged, ["long"], signals=signals)
    assert len(json.loads(long_body)["history"]) > DEFAULT_INLINE_REPLAY_MAX_EVENTS
    shorts = [first_task(Tagged, [f"s{i}"]) for i in range(20)]
    started = time.perf_counter()
    long_push = asyncio.ensure_future(push(app, long_body))
    # Lets the long push run up to its first suspension: the hand-off to
    # the pool (inline, it would run to its end here).
    await asyncio.sleep(0)
    latencies: list[float] = []
    for body in shorts:
        # A short push does not suspend (its replay is inline): yield
        # between them, so that the long answer lands as soon as it exists.
        await asyncio.sleep(0)
        t = time.perf_counter()
        assert scheduled_input(await push(app, body))[0].startswith("s")
        latencies.append(time.perf_counter() - t)
    shorts_done = time.perf_counter() - started
    assert not long_push.done(), "the long replay finished before the short pushes"
    answer = await long_push
    long_done = time.perf_counter() - started
    got_tag, _, _, where, pings = scheduled_input(answer)
    assert (got_tag, pings) == ("long", signals)
    assert where.startswith("baton-workflow")
    # Every short push was answered while the long replay ran, each in a
    # small share of its time.
    assert shorts_done < long_done
    assert max(latencies) < long_done / 2, (latencies, long_done)


@needs_baton
async def test_fifty_concurrent_workflows_on_one_app(env: WorkflowEnvironment) -> None:
    app = App(workflows=[Tagged], activities=[echo], signing_secret=SECRET)
    queue = f"concurrent-{uuid.uuid4().hex[:8]}"
    with AppServer(app) as server:
        await env.register_endpoint(queue, server.url, SECRET)
        handles = await asyncio.gather(
            *(
                env.client.start_workflow(Tagged.run, f"t{i}", id=f"{queue}-{i}", task_queue=queue)
                for i in range(50)
            )
        )
        results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 60)
    for i, result in enumerate(results):
        tag = f"t{i}"
        # Replayed three times on the app's loop thread, by a fresh instance
        # each time: no run saw another's context.
        assert result == [[tag, None, None, "baton-app", 0], tag, tag, None]
