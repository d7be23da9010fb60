"""SIGKILL mid inline step (docs/protocol.md §5.9), the issue's check that
each step's result is recorded once, no step is lost and no step runs more
than twice. A real server pushes to a real uvicorn process
(tests/inline_activity_handler.py) that runs five sequential activities
inline, one signed checkpoint per step; step 3 runs 2 s.

- The handler is SIGKILLed inside step 3 and started again on the same
  port: step 3's attempt died with it, its start-to-close timeout fires on
  the server and the retry is an ordinary pushed activity; steps 1 and 2,
  committed by their checkpoints, never run again.
- The node (``baton serve`` on a fresh PostgreSQL database, or ``baton
  dev`` on a SQLite file) is SIGKILLed inside step 3 and kept down until
  the handler has given up checkpointing step 3's result; it is restarted
  on the same port and database, fires step 3's start-to-close timeout and
  retries the step as a pushed activity.

Either way the history is an ordinary one the Replayer replays, with
dense event ids."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from baton.client import Client, WorkflowHistory
from baton.testing import Replayer, WorkflowEnvironment, _free_port, find_baton_binary
from tests.child_processes import HandlerProcess, sigkill, step_lines, stop
from tests.conftest import SECRET, needs_baton
from tests.inline_activity_handler import LONG_STEP, FiveInlineSteps

pytestmark = needs_baton

QUEUE = "inline-kill"
HANDLER = Path(__file__).with_name("inline_activity_handler.py")
RESULT = [10, 20, 30, 40, 50]
# Every wait of these tests is bounded by this.
WAIT = 60.0


class _Node:
    """A Baton server process on a fixed loopback port (stderr appended to
    ``stderr``), started again with the same arguments after a kill."""

    def __init__(self, args: list[str], port: int, stderr: Path) -> None:
        self.args = args
        self.port = port
        self.stderr = stderr
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "info")}
        with open(self.stderr, "ab") as err:
            self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=err, env=env)
        deadline = time.monotonic() + WAIT
        while True:
            try:
                with urllib.request.urlopen(f"{self.target}/readyz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the node did not start: {self._tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        sigkill(self.proc)

    def stop(self) -> None:
        stop(self.proc)

    def _tail(self) -> str:
        return self.stderr.read_text(errors="replace")[-3000:] if self.stderr.exists() else ""


@pytest.fixture
def handler(tmp_path: Path) -> Iterator[HandlerProcess]:
    h = HandlerProcess(HANDLER, _free_port(), tmp_path / "steps.log", tmp_path / "handler.stderr")
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture
def dev_env() -> Iterator[WorkflowEnvironment]:
    """A real-time ``baton dev --db :memory:``: the start-to-close timeout
    of the killed attempt fires by the clock."""
    e = asyncio.run(WorkflowEnvironment.start_local(binary=find_baton_binary()))
    try:
        yield e
    finally:
        asyncio.run(e.shutdown())


def _psql(url: str, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"},
    )


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh database ``baton_killtest_<random>`` on the test PostgreSQL
    server (``DATABASE_URL``, default postgres://postgres@127.0.0.1:5432/),
    dropped afterwards."""
    admin = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    if shutil.which("psql") is None:
        pytest.skip("psql is not installed: cannot create a PostgreSQL database")
    probe = _psql(admin, "select 1")
    if probe.returncode != 0:
        pytest.skip(f"PostgreSQL at {admin} is unreachable: {probe.stderr.strip()}")
    name = f"baton_killtest_{uuid.uuid4().hex[:12]}"
    created = _psql(admin, f"create database {name}")
    assert created.returncode == 0, created.stderr
    try:
        yield urllib.parse.urlsplit(admin)._replace(path=f"/{name}").geturl()
    finally:
        dropped = _psql(admin, f"drop database if exists {name} with (force)")
        assert dropped.returncode == 0, dropped.stderr


async def _until(what: str, cond: Any, detail: Any) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():
        assert time.monotonic() < deadline, f"{what}: {detail()}"
        await asyncio.sleep(0.01)


def _check_history(history: WorkflowHistory) -> None:
    """Five steps, each scheduled inline and completed exactly once with
    its result; step 3 completed by its second attempt; dense event ids."""
    events = history.events
    assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["event_type"] == "WorkflowExecutionCompleted"
    scheduled = {
        e["event_id"]: e["attributes"] for e in events if e["event_type"] == "ActivityTaskScheduled"
    }
    assert [a["activity_id"] for a in scheduled.values()] == ["1", "2", "3", "4", "5"]
    assert [bool(a.get("inline")) for a in scheduled.values()] == [True] * 5
    completed = [
        (scheduled[e["attributes"]["scheduled_event_id"]]["activity_id"], e["attributes"]["result"])
        for e in events
        if e["event_type"] == "ActivityTaskCompleted"
    ]
    assert completed == [("1", 10), ("2", 20), ("3", 30), ("4", 40), ("5", 50)]
    attempts = {
        scheduled[e["attributes"]["scheduled_event_id"]]["activity_id"]: e["attributes"]["attempt"]
        for e in events
        if e["event_type"] == "ActivityTaskStarted"
    }
    assert attempts == {"1": 1, "2": 1, "3": 2, "4": 1, "5": 1}, attempts
    assert not [e for e in events if e["event_type"] == "ActivityTaskFailed"]


def _check_steps(lines: list[tuple[int, str, int]]) -> None:
    """Step 3 ran twice (the attempt the kill lost, then its retry); every
    other step once; no step more than twice."""
    starts = Counter(n for _, what, n in lines if what == "start")
    assert max(starts.values()) <= 2, lines
    assert starts == {1: 1, 2: 1, LONG_STEP: 2, 4: 1, 5: 1}, lines


async def test_handler_sigkill_mid_inline_step(
    dev_env: WorkflowEnvironment, handler: HandlerProcess
) -> None:
    handler.start()
    await dev_env.register_endpoint(QUEUE, f"http://127.0.0.1:{handler.port}/", SECRET)
    h = await dev_env.client.start_workflow(
        FiveInlineSteps.run, id="inline-kill-handler", task_queue=QUEUE
    )

    await _until(
        "step 3 never started",
        lambda: any(w == "start" and n == LONG_STEP for _, w, n in step_lines(handler.log)),
        lambda: step_lines(handler.log),
    )
    assert handler.proc is not None
    first = handler.proc.pid
    handler.kill()
    before = step_lines(handler.log)
    # Killed inside step 3: it started in that process and never ended.
    assert (first, "start", LONG_STEP) in before and (first, "end", LONG_STEP) not in before
    # Steps 1 to 3 were started inline (their ActivityTaskScheduled say
    # so), and the results of 1 and 2 are committed: by the checkpoint that
    # started the next step.
    so_far = (await h.fetch_history()).events
    assert [
        (e["attributes"]["activity_id"], e["attributes"].get("inline"))
        for e in so_far
        if e["event_type"] == "ActivityTaskScheduled"
    ] == [("1", True), ("2", True), ("3", True)]
    assert [e["event_type"] for e in so_far].count("ActivityTaskCompleted") == 2

    handler.start()
    assert await asyncio.wait_for(h.result(), WAIT) == RESULT

    lines = step_lines(handler.log)
    _check_steps(lines)
    # Steps 1 and 2 were not run again; the rest ran in the new process.
    assert {pid for pid, _, n in lines if n in (1, 2)} == {first}
    assert {pid for pid, _, n in lines if n in (4, 5)} == {handler.proc.pid}
    assert [pid for pid, w, n in lines if n == LONG_STEP and w == "start"] == [
        first,
        handler.proc.pid,
    ]

    history = await h.fetch_history()
    _check_history(history)
    await Replayer(workflows=[FiveInlineSteps]).replay_workflow(history)


@pytest.mark.parametrize("store", ["postgres", "sqlite"])
async def test_node_sigkill_mid_inline_step(
    store: str, handler: HandlerProcess, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    port = _free_port()
    listen = f"127.0.0.1:{port}"
    exe = find_baton_binary()
    if store == "postgres":
        url: str = request.getfixturevalue("postgres_database")
        args = [exe, "serve", "--database-url", url, "--listen", listen]
    else:
        args = [exe, "dev", "--db", str(tmp_path / "baton.db"), "--listen", listen]
    node = _Node(args, port, tmp_path / "node.stderr")
    try:
        node.start()
        handler.start()
        env = await WorkflowEnvironment.from_client(await Client.connect(node.target))
        await env.register_endpoint(QUEUE, f"http://127.0.0.1:{handler.port}/", SECRET)
        h = await env.client.start_workflow(
            FiveInlineSteps.run, id=f"inline-kill-node-{store}", task_queue=QUEUE
        )
        await _until(
            "step 3 never started",
            lambda: any(w == "start" and n == LONG_STEP for _, w, n in step_lines(handler.log)),
            lambda: step_lines(handler.log),
        )
        node.kill()
        assert not any(w == "end" and n == LONG_STEP for _, w, n in step_lines(handler.log)), (
            "step 3 ended before the node was killed"
        )
        # The node stays down until step 3 has ended and the handler has
        # given up checkpointing its result: that result is lost.
        await _until(
            "step 3 never ended",
            lambda: any(w == "end" and n == LONG_STEP for _, w, n in step_lines(handler.log)),
            lambda: step_lines(handler.log),
        )
        await _until(
            "the handler never gave up checkpointing step 3",
            lambda: handler.stderr.read_text(errors="replace").count("checkpoint to ") >= 3,
            lambda: handler.stderr.read_text(errors="replace")[-3000:],
        )
        node.start()

        assert await asyncio.wait_for(h.result(), WAIT) == RESULT
        lines = step_lines(handler.log)
        _check_steps(lines)
        assert handler.proc is not None
        assert {pid for pid, _, _ in lines} == {handler.proc.pid}

        history = await h.fetch_history()
        _check_history(history)
        await Replayer(workflows=[FiveInlineSteps]).replay_workflow(history)
    finally:
        node.stop()
