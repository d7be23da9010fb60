"""The benchmark's handler: the same workloads as the server's
``baton-bench`` (W1 three sequential activities, W2 one activity, W3 a 1 s
durable timer), written with the SDK. Served by uvicorn in its own process;
``GET /stats`` reports where the handler's time went: sums in seconds, the
wall time of every push inside the app (request received to response sent,
``walls``, in order) and the event loop's lag (how late a 1 ms sleep on the
serving loop wakes up: the time the loop was blocked)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

from baton import App, activity, workflow
from baton import app as app_module

SECRET = "whsec_YmF0b24tYmVuY2htYXJrLXNlY3JldC1rZXktMzI="
STATS: dict[str, float] = defaultdict(float)
WALLS: list[float] = []
LAG_PROBE: list[asyncio.Task[None]] = []


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


_replay = app_module.handle_workflow_task


def timed_replay(*args: Any, **kwargs: Any) -> Any:
    t = time.perf_counter()
    try:
        return _replay(*args, **kwargs)
    finally:
        STATS["replay_s"] += time.perf_counter() - t
        STATS["workflow_tasks"] += 1
        STATS["history_events"] += len(args[1]["history"])


app_module.handle_workflow_task = timed_replay  # type: ignore[assignment]

_loads = json.loads


def timed_loads(s: Any, *a: Any, **k: Any) -> Any:
    t = time.perf_counter()
    try:
        return _loads(s, *a, **k)
    finally:
        STATS["json_decode_s"] += time.perf_counter() - t


app_module.json.loads = timed_loads  # type: ignore[attr-defined]

_dispatch = App._dispatch


async def timed_dispatch(self: App, kind: Any, push: Any) -> Any:
    t = time.perf_counter()
    try:
        return await _dispatch(self, kind, push)
    finally:
        STATS[f"dispatch_s_{kind}"] += time.perf_counter() - t
        STATS[f"pushes_{kind}"] += 1


App._dispatch = timed_dispatch  # type: ignore[method-assign]


async def probe_loop_lag() -> None:
    """Sleeps 1 ms at a time; whatever it oversleeps, the loop was busy."""
    while True:
        t = time.perf_counter()
        await asyncio.sleep(0.001)
        lag = time.perf_counter() - t - 0.001
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
    try:
        await inner(scope, receive, send)
    finally:
        if scope["type"] == "http" and scope["method"] == "POST":
            wall = time.perf_counter() - t
            STATS["requests"] += 1
            STATS["handle_s"] += wall
            WALLS.append(wall)
