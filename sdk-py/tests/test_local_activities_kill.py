"""A handler SIGKILLed in the middle of a local activity (issue 13's
correctness check): a real ``baton dev`` pushes to a real uvicorn process
(tests/local_activity_handler.py), which is killed while step 4 of five
sequential local activities runs, and started again on the same port. The
server retries the lost workflow task (docs/protocol.md §5.4) and the run
completes with every step's result recorded once, no step lost, and no step
executed more than twice: steps 1 and 2, whose markers an earlier task
committed, are replayed and not run again; steps 3 and 4, whose outcomes
died with the process, run once more."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from baton.testing import Replayer, WorkflowEnvironment, _free_port
from tests.child_processes import HandlerProcess, step_lines
from tests.conftest import SECRET, needs_baton
from tests.local_activity_handler import FiveLocalSteps

pytestmark = needs_baton

QUEUE = "local-kill"
HANDLER = Path(__file__).with_name("local_activity_handler.py")


@pytest.fixture
def handler(tmp_path: Path) -> Iterator[HandlerProcess]:
    h = HandlerProcess(HANDLER, _free_port(), tmp_path / "steps.log")
    try:
        yield h
    finally:
        h.stop()


async def test_sigkill_mid_local_activity(
    env: WorkflowEnvironment, handler: HandlerProcess
) -> None:
    handler.start()
    await env.register_endpoint(QUEUE, f"http://127.0.0.1:{handler.port}/", SECRET)
    h = await env.client.start_workflow(FiveLocalSteps.run, id="local-kill", task_queue=QUEUE)

    deadline = time.monotonic() + 30
    while not any(what == "start" and n == 4 for _, what, n in step_lines(handler.log)):
        assert time.monotonic() < deadline, f"step 4 never started: {step_lines(handler.log)}"
        await asyncio.sleep(0.01)
    assert handler.proc is not None
    first = handler.proc.pid
    handler.kill()
    before = step_lines(handler.log)
    # Killed inside step 4: it started in that process and never ended.
    assert (first, "start", 4) in before and (first, "end", 4) not in before

    handler.start()
    assert await asyncio.wait_for(h.result(), 60) == [10, 20, 30, 40, 50]

    lines = step_lines(handler.log)
    starts = Counter(n for _, what, n in lines if what == "start")
    assert starts == {1: 1, 2: 1, 3: 2, 4: 2, 5: 1}, lines
    assert all(pid == first for pid, _, n in lines if n in (1, 2))
    assert {pid for pid, _, n in lines if n == 5} == {handler.proc.pid}

    history = await h.fetch_history()
    markers = [
        e["attributes"]["details"]
        for e in history.events
        if e["event_type"] == "MarkerRecorded" and e["attributes"]["marker_name"] == "LocalActivity"
    ]
    assert [(m["activity_id"], m["result"]) for m in markers] == [
        ("1", 10),
        ("2", 20),
        ("3", 30),
        ("4", 40),
        ("5", 50),
    ]
    await Replayer(workflows=[FiveLocalSteps]).replay_workflow(history)
