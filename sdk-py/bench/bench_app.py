"""The benchmark's handler: the same workloads as the server's
``baton-bench`` (W1 three sequential activities, W2 one activity, W3 a 1 s
durable timer), written with the SDK. Served by uvicorn in its own process;
``GET /stats`` reports where the handler's time went: sums in seconds, the
wall time of every push inside the app (request received to response sent,
``walls``, in order), the push's phases inside the app (body, signature
and JSON before the dispatch; the dispatch; the answer sent after it), the
inline sessions' checkpoint round trips as the app sees them, and the
event loop's lag (how late a 10 ms sleep on the serving loop wakes up: the
time the loop was busy with other work; at 10 ms the probe itself costs
little CPU)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import os
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

from baton import App, _http, activity, workflow
from baton import app as app_module
from baton._workflow_instance import WorkflowInstance

SECRET = "whsec_YmF0b24tYmVuY2htYXJrLXNlY3JldC1rZXktMzI="
STATS: dict[str, float] = defaultdict(float)
WALLS: list[float] = []
LAG_PROBE: list[asyncio.Task[None]] = []
# When the push being served entered the app, and when its dispatch ended.
PUSH_TIMES: contextvars.ContextVar[list[float]] = contextvars.ContextVar("push_times")


@activity.defn
async def step(n: int) -> int:
    return n + 1


@workflow.defn
class W1:
    @workflow.run
    async def run(self) -> int:
        n = 0
        for _ in range(3):
            n = await workflow.execute_activity(
                step, n, start_to_close_timeout=timedelta(seconds=30)
            )
        return n


@workflow.defn
class W2:
    @workflow.run
    async def run(self) -> int:
        return await workflow.execute_activity(
            step, 0, start_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn
class W3:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(1)
        return "woke"


_begin = WorkflowInstance.begin


def timed_begin(self: WorkflowInstance) -> None:
    """The replay of a pushed history."""
    t = time.perf_counter()
    try:
        _begin(self)
    finally:
        STATS["replay_s"] += time.perf_counter() - t


WorkflowInstance.begin = timed_begin  # type: ignore[method-assign]

_loads = json.loads


def timed_loads(s: Any, *a: Any, **k: Any) -> Any:
    t = time.perf_counter()
    try:
        return _loads(s, *a, **k)
    finally:
        STATS["json_decode_s"] += time.perf_counter() - t


# The json module's own: pushes and checkpoint answers alike.
app_module.json.loads = timed_loads  # type: ignore[attr-defined]

_request = _http.request


async def timed_request(method: str, url: str, **kwargs: Any) -> _http.Response:
    """The app's own requests: the inline sessions' checkpoints."""
    t = time.perf_counter()
    try:
        return await _request(method, url, **kwargs)
    finally:
        STATS["checkpoint_s"] += time.perf_counter() - t
        STATS["checkpoints"] += 1


_http.request = timed_request  # type: ignore[assignment]

_dispatch = App._dispatch


async def timed_dispatch(self: App, kind: Any, push: Any, *args: Any) -> Any:
    t = time.perf_counter()
    if kind == "workflow_task":
        STATS["workflow_tasks"] += 1
        STATS["history_events"] += len(push["history"])
    times = PUSH_TIMES.get(None)
    if times is not None:
        STATS["before_dispatch_s"] += t - times[0]
    try:
        return await _dispatch(self, kind, push, *args)
    finally:
        end = time.perf_counter()
        STATS["dispatch_s"] += end - t
        STATS[f"dispatch_s_{kind}"] += end - t
        STATS[f"pushes_{kind}"] += 1
        if times is not None:
            times.append(end)


App._dispatch = timed_dispatch  # type: ignore[method-assign]


async def probe_loop_lag() -> None:
    """Sleeps 10 ms at a time; whatever it oversleeps, the loop was busy."""
    while True:
        t = time.perf_counter()
        await asyncio.sleep(0.01)
        lag = time.perf_counter() - t - 0.01
        STATS["loop_lag_s"] += lag
        STATS["loop_lag_samples"] += 1
        STATS["loop_lag_max_s"] = max(STATS["loop_lag_max_s"], lag)


inner = App(
    workflows=[W1, W2, W3],
    activities=[step],
    signing_secret=SECRET,
    determinism_checks=os.environ.get("BENCH_CHECKS", "1") == "1",
)


async def app(scope: Any, receive: Any, send: Any) -> None:
    if not LAG_PROBE and scope["type"] == "http":
        LAG_PROBE.append(asyncio.get_running_loop().create_task(probe_loop_lag()))
    if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == "/stats":
        STATS["cpu_s"] = time.process_time()
        body = json.dumps({**STATS, "walls": WALLS}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    t = time.perf_counter()
    times = [t]
    PUSH_TIMES.set(times)
    try:
        await inner(scope, receive, send)
    finally:
        if scope["type"] == "http" and scope["method"] == "POST":
            end = time.perf_counter()
            wall = end - t
            STATS["requests"] += 1
            STATS["handle_s"] += wall
            if len(times) == 2:
                STATS["after_dispatch_s"] += end - times[1]
            WALLS.append(wall)
