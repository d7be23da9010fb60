"""Sticky and paged pushes end to end (docs/protocol.md §5.10): a real
``baton dev`` with a small ``--push-history-bytes`` pushes to Apps served
by uvicorn on loopback. An ASGI recorder in front of the Apps keeps each
workflow task push and its answer (and can send workflow tasks to two Apps
in turn, as a load balancer would, or swap in a new App, as a restart
would); ``App.workflow_cache_stats`` says what each App's cache and pager
did.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from baton import App, WorkflowHandle, _http, activity, workflow
from baton.app import ASGIReceive, ASGIScope, ASGISend
from baton.exceptions import RPCError, WorkflowUpdateFailedError
from baton.testing import AppServer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton

pytestmark = needs_baton

# Small, so that a few steps outgrow it and later pushes are paged.
PUSH_HISTORY_BYTES = 4096
STC = timedelta(seconds=30)
# Long enough that no task times out on a loaded machine (a timed-out task
# is pushed again whole, as it should, but the counts below would change).
TASK_TIMEOUT = timedelta(seconds=60)


@activity.defn
async def sticky_pad(i: int) -> str:
    return f"{i}:" + "y" * 200


def _expected(n: int) -> list[int]:
    return [n, sum(len(f"{i}:") + 200 for i in range(n))]


@workflow.defn
class StickySteps:
    """``n`` pushed activities one after the other, then (``wait``) waits
    for ``finish``."""

    def __init__(self) -> None:
        self.done = 0
        self.finished = False

    @workflow.signal
    def finish(self) -> None:
        self.finished = True

    @workflow.query
    def progress(self) -> int:
        return self.done

    @workflow.update
    def plus(self, k: int) -> int:
        return self.done + k

    @plus.validator
    def check_plus(self, k: int) -> None:
        if k < 0:
            raise ValueError("k must not be negative")

    @workflow.run
    async def run(self, n: int, wait: bool) -> list[int]:
        total = 0
        for i in range(n):
            padded = await workflow.execute_activity(
                sticky_pad, i, start_to_close_timeout=STC, inline=False
            )
            total += len(padded)
            self.done += 1
        if wait:
            await workflow.wait_condition(lambda: self.finished)
        return [self.done, total]


@dataclass
class Push:
    """One workflow task push and what the App answered."""

    workflow_id: str
    first_event_id: int
    last_event_id: int
    history_size_bytes: int
    sticky: bool


class Recorder:
    """An ASGI app in front of ``apps``: workflow task pushes go to them in
    turn (all to the one with one App), everything else to the first."""

    def __init__(self, *apps: App) -> None:
        self.apps = apps
        self._turn = 0
        self._lock = threading.Lock()
        self.pushes: list[Push] = []

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] != "http":
            await self.apps[0](scope, receive, send)
            return
        body = await _read_body(receive)
        push: dict[str, Any] = json.loads(body) if body else {}
        task = push.get("type") == "workflow_task"
        app = self.apps[0]
        if task:
            with self._lock:
                app = self.apps[self._turn % len(self.apps)]
                self._turn += 1

        async def replayed() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def captured(message: dict[str, Any]) -> None:
            # Recorded before the server has the answer (and can act on it).
            if task and message["type"] == "http.response.body":
                self._record(push, json.loads(message.get("body", b"")))
            await send(message)

        await app(scope, replayed, captured)

    def _record(self, push: dict[str, Any], answer: dict[str, Any]) -> None:
        with self._lock:
            self.pushes.append(
                Push(
                    push["workflow_id"],
                    int(push.get("history_first_event_id") or 1),
                    push["history"][-1]["event_id"],
                    int(push["history_size_bytes"]),
                    bool(answer.get("sticky")),
                )
            )

    def restart(self, *apps: App) -> None:
        """The process behind the URL restarted: new Apps, nothing cached."""
        with self._lock:
            self.apps = apps

    def of(self, workflow_id: str) -> list[Push]:
        with self._lock:
            return [p for p in self.pushes if p.workflow_id == workflow_id]


async def _read_body(receive: ASGIReceive) -> bytes:
    """An ASGI request's whole body."""
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = bool(message.get("more_body", False))
    return body


class RefusingPages:
    """An ASGI proxy in front of the server's page route (the Apps reach it
    through ``checkpoint_base_url``) that answers the next ``refuse``
    requests ``409`` itself, as the route does for an expired reference,
    and forwards the others."""

    def __init__(self, target: str) -> None:
        self._target = target.rstrip("/")
        self.refuse = 0
        self.refused = 0

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            status, answer = 409, b'{"code":"conflict","detail":"history reference expired"}'
        else:
            headers = {
                k.decode(): v.decode()
                for k, v in scope["headers"]
                if k.decode().lower().startswith("webhook-")
            }
            headers["Content-Type"] = "application/json"
            resp = await _http.request(
                "POST", self._target + scope["path"], body=body, headers=headers
            )
            status, answer = resp.status, resp.body
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture(scope="module")
def env() -> Iterator[WorkflowEnvironment]:
    e = asyncio.run(
        WorkflowEnvironment.start_local(
            extra_args=["--push-history-bytes", str(PUSH_HISTORY_BYTES)]
        )
    )
    try:
        yield e
    finally:
        asyncio.run(e.shutdown())


def _app(**options: Any) -> App:
    return App(workflows=[StickySteps], activities=[sticky_pad], signing_secret=SECRET, **options)


@pytest.fixture
def serve(env: WorkflowEnvironment, request: pytest.FixtureRequest) -> Iterator[Any]:
    """``serve(*apps)``: the apps behind one Recorder, registered for a
    task queue of the test's own; gives (queue, recorder)."""
    servers: list[AppServer] = []

    def start(*apps: App) -> tuple[str, Recorder]:
        recorder = Recorder(*apps)
        server = AppServer(recorder).start()
        servers.append(server)
        queue = f"sticky-{request.node.name}-{len(servers)}"
        asyncio.run(env.register_endpoint(queue, server.url, SECRET))
        return queue, recorder

    yield start
    for s in servers:
        s.stop()


async def _until(predicate: Any, what: str) -> None:
    for _ in range(1500):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never came: {what}")


async def _run(env: WorkflowEnvironment, queue: str, wid: str, n: int) -> list[int]:
    return await env.client.execute_workflow(
        StickySteps.run, args=[n, False], id=wid, task_queue=queue, task_timeout=TASK_TIMEOUT
    )


async def _start_held(
    env: WorkflowEnvironment, queue: str, wid: str, n: int
) -> WorkflowHandle[list[int]]:
    """Starts ``n`` steps that then wait for the ``finish`` signal."""
    return await env.client.start_workflow(
        StickySteps.run, args=[n, True], id=wid, task_queue=queue, task_timeout=TASK_TIMEOUT
    )


def test_sticky_pushes_go_on_in_the_cached_instance(env: WorkflowEnvironment, serve: Any) -> None:
    app = _app()
    queue, recorder = serve(app)
    assert asyncio.run(_run(env, queue, "sticky-30", 30)) == _expected(30)
    pushes = recorder.of("sticky-30")
    # One task per step plus the first: each after the first carries only
    # the events after the previous task's WorkflowTaskStarted.
    assert len(pushes) == 31
    assert pushes[0].first_event_id == 1
    for before, push in itertools.pairwise(pushes):
        assert push.first_event_id == before.last_event_id + 1, push
    assert [p.sticky for p in pushes] == [True] * 30 + [False]  # the last one closed the run
    assert pushes[-1].history_size_bytes > PUSH_HISTORY_BYTES
    stats = app.workflow_cache_stats
    assert (stats.hits, stats.misses, stats.history_pages, stats.cached) == (30, 1, 0, 0)


def test_without_a_cache_every_push_is_paged_in_and_replayed(
    env: WorkflowEnvironment, serve: Any
) -> None:
    app = _app(max_cached_workflows=0)
    queue, recorder = serve(app)
    assert asyncio.run(_run(env, queue, "uncached-30", 30)) == _expected(30)
    pushes = recorder.of("uncached-30")
    assert len(pushes) == 31
    assert not any(p.sticky for p in pushes)
    # Whole while the history is small, paged once it outgrew the bound.
    paged = [p.first_event_id > 1 for p in pushes]
    whole = paged.index(True)
    assert whole > 0 and paged == [False] * whole + [True] * (len(pushes) - whole), paged
    assert pushes[whole].history_size_bytes > PUSH_HISTORY_BYTES // 2
    stats = app.workflow_cache_stats
    assert (stats.hits, stats.misses, stats.cached) == (0, 31, 0)
    assert stats.history_pages >= len(pushes) - whole


def test_a_sticky_push_to_an_app_without_the_instance_pages_in(
    env: WorkflowEnvironment, serve: Any
) -> None:
    """Two processes behind one URL, taking the run's tasks in turn: every
    sticky push reaches the App that did not answer the previous task."""
    first, second = _app(), _app()
    queue, recorder = serve(first, second)
    assert asyncio.run(_run(env, queue, "alternating-20", 20)) == _expected(20)
    pushes = recorder.of("alternating-20")
    assert len(pushes) == 21
    assert all(p.first_event_id > 1 for p in pushes[1:])
    a, b = first.workflow_cache_stats, second.workflow_cache_stats
    assert (a.hits, b.hits) == (0, 0)
    assert (a.misses, b.misses) == (11, 10)
    assert a.history_pages > 0 and b.history_pages > 0


def test_a_restarted_app_pages_in_the_run_it_lost(env: WorkflowEnvironment, serve: Any) -> None:
    before = _app()
    queue, recorder = serve(before)

    async def main() -> list[int]:
        handle = await _start_held(env, queue, "restarted-12", 12)
        await _until(lambda: len(recorder.of("restarted-12")) == 13, "the 13th task")
        assert before.workflow_cache_stats.cached == 1
        recorder.restart(_app())
        await handle.signal(StickySteps.finish)
        return await handle.result()

    assert asyncio.run(main()) == _expected(12)
    last, signalled = recorder.of("restarted-12")[-2:]
    assert signalled.first_event_id == last.last_event_id + 1  # a sticky push
    assert not signalled.sticky  # it closed the run
    after = recorder.apps[0].workflow_cache_stats
    assert (after.hits, after.misses) == (0, 1)
    assert after.history_pages >= 1


def test_many_runs_at_once_with_a_small_cache(env: WorkflowEnvironment, serve: Any) -> None:
    app = _app(max_cached_workflows=8)
    queue, recorder = serve(app)

    async def main() -> list[list[int]]:
        return await asyncio.gather(
            *(_run(env, queue, f"many-{i}", 10) for i in range(40)), return_exceptions=False
        )

    assert asyncio.run(main()) == [_expected(10)] * 40
    stats = app.workflow_cache_stats
    assert stats.hits + stats.misses == len(recorder.pushes) == 40 * 11
    assert stats.evictions > 0
    assert stats.hits > 0
    assert stats.cached == 0


def test_queries_and_update_validations_page_in_and_leave_the_cache_alone(
    env: WorkflowEnvironment, serve: Any
) -> None:
    app = _app()
    queue, recorder = serve(app)

    async def main() -> list[int]:
        handle = await _start_held(env, queue, "queried-30", 30)
        # Until the task that took the last result was answered (a query
        # may see that result before: it applies what the next task would).
        await _until(lambda: len(recorder.of("queried-30")) == 31, "the 31st task")
        before = app.workflow_cache_stats
        assert before.cached == 1
        assert await handle.query(StickySteps.progress) == 30
        assert await handle.execute_update(StickySteps.plus, 12) == 42
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(StickySteps.plus, -1)
        after = app.workflow_cache_stats
        # The query and both validations paged in; the update's task and
        # nothing else went on in the cached instance.
        assert after.history_pages >= before.history_pages + 3
        assert (after.hits, after.misses, after.cached) == (before.hits + 1, before.misses, 1)
        await handle.signal(StickySteps.finish)
        return await handle.result()

    assert asyncio.run(main()) == _expected(30)
    assert app.workflow_cache_stats.misses == 1


def test_a_refused_page_fails_the_task_and_its_retry_pages_in_again(
    env: WorkflowEnvironment, serve: Any
) -> None:
    proxy = RefusingPages(env.target)
    with AppServer(proxy) as pages:
        app = _app(max_cached_workflows=0, checkpoint_base_url=pages.url)
        queue, recorder = serve(app)

        async def main() -> list[int]:
            handle = await _start_held(env, queue, "refused-20", 20)
            await _until(lambda: app.workflow_cache_stats.history_pages > 0, "a paged push")
            proxy.refuse = 1
            await _until(lambda: proxy.refused == 1, "a refused page")
            await _until(lambda: len(recorder.of("refused-20")) == 22, "every task of the 20 steps")
            assert await handle.query(StickySteps.progress) == 20
            # A query whose page is refused is not answered (503): the
            # caller may ask again.
            proxy.refuse = 1
            with pytest.raises(RPCError) as refused:
                await handle.query(StickySteps.progress)
            assert refused.value.status == 503
            assert await handle.query(StickySteps.progress) == 20
            await handle.signal(StickySteps.finish)
            result = await handle.result()
            types = [e["event_type"] for e in (await handle.fetch_history()).events]
            assert types.count("WorkflowTaskFailed") == 1
            return result

        assert asyncio.run(main()) == _expected(20)
        assert proxy.refused == 2
