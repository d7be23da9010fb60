"""Activities: heartbeat throttling and cancellation against a stand-in for
the server's REST API."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from baton import activity
from baton._activity_runner import ServerAccess, run_activity
from baton.activity import _Definition


class FakeRest:
    """Records heartbeat calls; answers ``cancel_after`` calls with
    cancel_requested (or the given status)."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, dict[str, Any], str]] = []
        self.cancel_after: int | None = None
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.calls.append((time.monotonic(), body, self.path))
                cancel = outer.cancel_after is not None and len(outer.calls) >= outer.cancel_after
                payload = json.dumps({"cancel_requested": cancel}).encode()
                self.send_response(outer.status)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def details(self) -> list[Any]:
        return [c[1]["details"] for c in self.calls]


@pytest.fixture
def rest() -> Iterator[FakeRest]:
    r = FakeRest()
    yield r
    r.server.shutdown()
    r.server.server_close()


def push(activity_type: str, **extra: Any) -> Any:
    return {
        "type": "activity_task",
        "namespace": "default",
        "task_token": "tok-7",
        "workflow_id": "wf",
        "run_id": "run",
        "workflow_type": "W",
        "activity_id": "1",
        "activity_type": activity_type,
        "task_queue": "q",
        "input": [],
        "attempt": 1,
        "idempotency_key": "run/1",
        "scheduled_time": "2024-01-01T00:00:00.000Z",
        "started_time": "2024-01-01T00:00:00.000Z",
        "deadline": "2024-01-01T00:01:00.000Z",
        "heartbeat_timeout": "1s",
        **extra,
    }


async def run(fn: Any, rest: FakeRest | None, **extra: Any) -> tuple[int, dict[str, Any]]:
    d = _Definition.of(fn)
    outcome = await run_activity(
        {d.name: d},
        push(d.name, **extra),
        server=ServerAccess(rest.url if rest else None, "key-1"),
        executor=None,
    )
    return outcome.status, outcome.body


@activity.defn
async def chatty() -> str:
    for i in range(1, 4):
        activity.heartbeat(i)
    await asyncio.sleep(1.1)
    return "done"


async def test_heartbeats_are_throttled_to_the_latest_details(rest: FakeRest) -> None:
    assert await run(chatty, rest) == (200, {"result": "done"})
    assert rest.details() == [[1], [3]]
    (t0, first, path), (t1, _, _) = rest.calls
    assert path == "/api/v1/namespaces/default/activities/heartbeat"
    assert first["task_token"] == "tok-7"
    # 0.8 x the 1 s heartbeat timeout.
    assert 0.6 <= t1 - t0 <= 1.0


@activity.defn
async def cancellable() -> str:
    activity.heartbeat("step-1")
    await asyncio.sleep(5)
    return "not cancelled"


async def test_cancellation_reaches_an_async_activity_and_is_reported(rest: FakeRest) -> None:
    rest.cancel_after = 1
    begun = time.monotonic()
    assert await run(cancellable, rest) == (200, {"canceled": {"details": ["step-1"]}})
    assert time.monotonic() - begun < 2


@activity.defn
def sync_cancellable() -> str:
    for i in range(200):
        activity.heartbeat(i)
        time.sleep(0.02)
    return "not cancelled"


async def test_cancellation_reaches_a_sync_activity_at_its_next_heartbeat(rest: FakeRest) -> None:
    rest.cancel_after = 1
    status, body = await run(sync_cancellable, rest, heartbeat_timeout="0.1s")
    assert status == 200
    assert "canceled" in body, body
    assert body["canceled"]["details"][0] < 50


@activity.defn
async def refused() -> str:
    activity.heartbeat(1)
    await asyncio.sleep(5)
    return "kept going"


async def test_a_refused_heartbeat_stops_a_stale_attempt(rest: FakeRest) -> None:
    rest.status = 409  # the attempt timed out and another one runs
    status, body = await run(refused, rest)
    assert status == 200 and "canceled" in body


@activity.defn
async def local_only() -> str:
    activity.heartbeat("x")
    return "ok"


async def test_heartbeat_without_a_server_url_stays_local(caplog: pytest.LogCaptureFixture) -> None:
    assert await run(local_only, None) == (200, {"result": "ok"})
    assert "no server_url" in caplog.text


def test_activity_functions_outside_an_activity_raise() -> None:
    from baton.exceptions import BatonError

    with pytest.raises(BatonError, match="not in activity"):
        activity.info()
    assert activity.in_activity() is False
