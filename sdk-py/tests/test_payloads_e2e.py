"""Payloads by reference end to end (docs/protocol.md §9.1): a real ``baton
dev`` stores every large payload apart and pushes references to an App
served by uvicorn on loopback. A workflow whose input, activity inputs and
results (pushed and inline), heartbeat details, signal and local activity
result are all ~300 KB runs with the server's defaults (references, their
payloads inlined in the pushes) and with nothing inlined (every reference
fetched through the payload route; once more with paged pushes and no
sticky cache). The history over REST holds references; the client's
fetched history replays in the Replayer.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from baton import App, activity, workflow
from baton._payloads import digest, read_digests
from baton.common import RetryPolicy
from baton.testing import AppServer, Replayer, WorkflowEnvironment
from tests.conftest import SECRET, needs_baton

pytestmark = needs_baton

SIZE = 300_000
TEXT = "".join(itertools.islice(itertools.cycle("abcdefghij"), SIZE))
NOTE = "n" * SIZE
STC = timedelta(seconds=30)
# The server's options, the App's options.
MODES: dict[str, tuple[list[str], dict[str, Any]]] = {
    "defaults": ([], {}),
    "nothing-inlined": (["--payload-reference-bytes", "1024", "--push-payload-bytes", "0"], {}),
    "paged-uncached": (
        [
            "--payload-reference-bytes",
            "1024",
            "--push-payload-bytes",
            "0",
            "--push-history-bytes",
            "2048",
        ],
        {"max_cached_workflows": 0},
    ),
}


@activity.defn
async def reverse(text: str) -> str:
    return text[::-1]


@activity.defn
async def pad(n: int) -> str:
    return "l" * n


@activity.defn
async def resume(text: str) -> list[int]:
    """Heartbeats ~300 KB of details and fails on its first attempt; the
    second reads them back."""
    info = activity.info()
    if info.attempt == 1:
        activity.heartbeat(text)
        raise RuntimeError("first attempt fails after heartbeating")
    (details,) = info.heartbeat_details
    return [info.attempt, len(details), int(details == text)]


@workflow.defn
class BigPayloads:
    def __init__(self) -> None:
        self.note: str | None = None

    @workflow.signal
    def hint(self, text: str) -> None:
        self.note = text

    @workflow.run
    async def run(self, text: str) -> list[Any]:
        pushed = await workflow.execute_activity(
            reverse, text, start_to_close_timeout=STC, inline=False
        )
        inline = await workflow.execute_activity(reverse, pushed, start_to_close_timeout=STC)
        local = await workflow.execute_local_activity(pad, len(text), start_to_close_timeout=STC)
        resumed = await workflow.execute_activity(
            resume,
            text,
            start_to_close_timeout=STC,
            heartbeat_timeout=STC,
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
            inline=False,
        )
        await workflow.wait_condition(lambda: self.note is not None)
        assert self.note is not None
        return [
            len(text),
            pushed == text[::-1],
            inline == text,
            len(local),
            resumed,
            len(self.note),
            self.note == "n" * len(self.note),
        ]


EXPECTED = [SIZE, True, True, SIZE, [2, SIZE, 1], SIZE, True]


@pytest.fixture(scope="module", params=list(MODES))
def mode(request: pytest.FixtureRequest) -> Iterator[tuple[str, WorkflowEnvironment, App]]:
    """A server in one of :data:`MODES` and an App registered with it."""
    name = str(request.param)
    server_args, app_options = MODES[name]
    env = asyncio.run(WorkflowEnvironment.start_local(extra_args=server_args))
    app = App(
        workflows=[BigPayloads],
        activities=[reverse, pad, resume],
        signing_secret=SECRET,
        # Heartbeats, and the payload route for activity pushes (they name none).
        server_url=env.target,
        **app_options,
    )
    server = AppServer(app).start()
    try:
        asyncio.run(env.register_endpoint(f"big-{name}", server.url, SECRET))
        yield name, env, app
    finally:
        server.stop()
        asyncio.run(env.shutdown())


def test_large_payloads_go_by_reference_and_replay(
    mode: tuple[str, WorkflowEnvironment, App],
) -> None:
    name, env, app = mode

    async def main() -> None:
        handle = await env.client.start_workflow(
            BigPayloads.run, TEXT, id=f"big-{name}", task_queue=f"big-{name}"
        )
        await handle.signal(BigPayloads.hint, NOTE)
        assert await asyncio.wait_for(handle.result(), 120) == EXPECTED

        # As stored: a reference at every position that carries a large payload.
        resp = await env.client._call("GET", f"/workflows/{handle.id}/history")
        raw = resp.json_object()["events"]
        referenced = {
            (e["event_type"], member)
            for e in raw
            for member in ("input", "result", "details")
            if digest((e.get("attributes") or {}).get(member)) is not None
        }
        assert {
            ("WorkflowExecutionStarted", "input"),
            ("ActivityTaskScheduled", "input"),
            ("ActivityTaskCompleted", "result"),
            ("WorkflowExecutionSignaled", "input"),
            ("MarkerRecorded", "details"),
        } <= referenced, referenced
        # The second activity ran inline: its input and result went through
        # a checkpoint and its answer.
        assert [
            bool(e["attributes"].get("inline"))
            for e in raw
            if e["event_type"] == "ActivityTaskScheduled"
        ] == [False, True, False]

        # Fetched by the client: the read positions put in place, and replayable.
        history = await handle.fetch_history()
        assert read_digests(history.events) == []
        started = history.events[0]["attributes"]["input"]
        assert started == [TEXT]
        # Not read by replay: left as stored.
        assert all(
            digest(e["attributes"].get("input")) is not None
            for e in history.events
            if e["event_type"] == "ActivityTaskScheduled"
        )
        replayed = await Replayer(workflows=[BigPayloads]).replay_workflow(history)
        assert replayed.replay_failure is None

    asyncio.run(main())
    fetched = app.workflow_cache_stats.payloads_fetched
    if name == "defaults":
        # Every referenced payload a push needed came inlined with it.
        assert fetched == 0
    else:
        # Nothing inlined: the workflow's five read payloads, the activity
        # inputs and the heartbeat details all came through the route.
        assert fetched >= 5
