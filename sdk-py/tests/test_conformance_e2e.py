"""Runs the end-to-end scenarios of tests/conformance/<name>/scenario.json
(see tests/conformance/README.md) against a real ``baton dev
--time-skipping --push-history-bytes 16384``, with each folder's
feature.py served on loopback.
sdk-ts/test/scenarios.test.ts runs the same files with the TypeScript SDK.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from baton import App
from baton.client import WorkflowHandle
from baton.common import WorkflowExecutionStatus
from baton.exceptions import ApplicationError, WorkflowFailureError, WorkflowUpdateFailedError
from baton.testing import AppServer, WorkflowEnvironment, find_baton_binary
from tests.test_conformance import CASES, load_feature

SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
QUEUE = "conformance"
# The runners' bound on a pushed history (sticky_history outgrows it).
PUSH_HISTORY_BYTES = 16384
SCENARIO_DIRS = (
    sorted(p for p in CASES.glob("*") if (p / "scenario.json").exists()) if CASES.exists() else []
)

try:
    BINARY: str | None = find_baton_binary()
except FileNotFoundError:
    BINARY = None

pytestmark = pytest.mark.skipif(BINARY is None, reason="no baton binary: cargo build --bin baton")


@pytest.fixture(scope="module")
def env() -> Iterator[WorkflowEnvironment]:
    """``baton dev --time-skipping --push-history-bytes 16384``."""
    e = asyncio.run(
        WorkflowEnvironment.start_time_skipping(
            binary=BINARY, extra_args=["--push-history-bytes", str(PUSH_HISTORY_BYTES)]
        )
    )
    try:
        yield e
    finally:
        asyncio.run(e.shutdown())


@pytest.fixture(scope="module")
def served(env: WorkflowEnvironment) -> Iterator[None]:
    features = [load_feature(d) for d in SCENARIO_DIRS]
    app = App(
        workflows=[w for f in features for w in f.workflows],
        activities=[a for f in features for a in f.activities],
        signing_secret=SECRET,
        server_url=env.target,
    )
    with AppServer(app) as server:
        asyncio.run(env.register_endpoint(QUEUE, server.url, SECRET))
        yield


async def _wait_for_timer(handle: WorkflowHandle[Any]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if (await handle.describe()).pending_timers:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{handle.id}: no pending timer")


def _check_history(events: list[dict[str, Any]], expect: dict[str, Any]) -> None:
    """The facts of ``expect`` that the history must show."""
    types = [e["event_type"] for e in events]
    for event_type, n in expect.get("event_counts", {}).items():
        assert types.count(event_type) == n, f"{event_type} in {types}"
    if "events_in_order" in expect:
        wanted: list[str] = expect["events_in_order"]
        at = 0
        for t in types:
            if at < len(wanted) and t == wanted[at]:
                at += 1
        assert at == len(wanted), f"{wanted} is not a subsequence of {types}"
    if "last_event" in expect:
        assert types[-1] == expect["last_event"]
    if "continued" in expect:
        continued = "continued_execution_run_id" in events[0]["attributes"]
        assert continued == expect["continued"], "continued"
    scheduled = [e for e in events if e["event_type"] == "ActivityTaskScheduled"]

    def scheduled_ids(activity_type: str) -> set[int]:
        return {
            e["event_id"] for e in scheduled if e["attributes"]["activity_type"] == activity_type
        }

    for group in expect.get("scheduled_together", []):
        tasks = {
            e["attributes"]["workflow_task_completed_event_id"]
            for e in scheduled
            if e["attributes"]["activity_type"] in group
        }
        assert len(tasks) == 1, f"{group} were not scheduled by one workflow task"
    opening = {"ActivityTaskScheduled", "ActivityTaskStarted", "ActivityTaskCancelRequested"}
    for activity_type, attempts in expect.get("activity_attempts", {}).items():
        ids = scheduled_ids(activity_type)
        started = [
            e["attributes"]["attempt"]
            for e in events
            if e["event_type"] == "ActivityTaskStarted"
            and e["attributes"]["scheduled_event_id"] in ids
        ]
        assert started == [attempts], f"attempts of {activity_type}: {started}"
    for activity_type, outcome in expect.get("activity_outcomes", {}).items():
        ids = scheduled_ids(activity_type)
        closed = [
            e["event_type"]
            for e in events
            if e["event_type"].startswith("ActivityTask")
            and e["event_type"] not in opening
            and e["attributes"]["scheduled_event_id"] in ids
        ]
        assert closed == [outcome], f"{activity_type}: {closed}"
    for activity_type, flags in expect.get("activity_inline", {}).items():
        got = [
            bool(e["attributes"].get("inline"))
            for e in scheduled
            if e["attributes"]["activity_type"] == activity_type
        ]
        assert got == flags, f"inline flags of {activity_type}: {got}"


def test_every_scenario_has_a_python_feature() -> None:
    assert SCENARIO_DIRS, "no scenario.json under tests/conformance"
    for d in SCENARIO_DIRS:
        assert (d / "feature.py").exists(), f"no feature.py in {d}"


@pytest.mark.parametrize("scenario_dir", SCENARIO_DIRS, ids=[p.name for p in SCENARIO_DIRS])
async def test_scenario(scenario_dir: Path, env: WorkflowEnvironment, served: None) -> None:
    del served
    runs: list[dict[str, Any]] = json.loads((scenario_dir / "scenario.json").read_text())["runs"]
    client = env.client
    for run in runs:
        wid = run["workflow_id"]
        handle = await client.start_workflow(
            run["workflow_type"], id=wid, task_queue=QUEUE, args=run["args"]
        )
        for step in run["steps"]:
            if "wait_for" in step:
                await _wait_for_timer(handle)
            elif "skip_time" in step:
                await env.skip_time(_duration(step["skip_time"]))
            elif "signal" in step:
                await handle.signal(step["signal"], args=step["args"])
            elif "update" in step:
                await _update(handle, step)
            else:
                got = await handle.query(step["query"], args=step["args"])
                assert got == step["result"], f"{wid}: query {step['query']}"
        expect: dict[str, Any] = run["expect"]
        try:
            result = await asyncio.wait_for(handle.result(), 30)
            status = WorkflowExecutionStatus.COMPLETED.value
        except WorkflowFailureError:
            result, status = None, (await handle.describe()).status.value
        assert status == expect["status"], wid
        if "result" in expect:
            assert result == expect["result"], wid
        # The last run of the chain (the handle names the first).
        last = client.get_workflow_handle(wid)
        _check_history(list((await last.fetch_history()).events), expect)
        for q in expect.get("queries", []):
            got = await handle.query(q["query"], args=q["args"])
            assert got == q["result"], f"{wid}: query {q['query']} after the run"


async def _update(handle: WorkflowHandle[Any], step: dict[str, Any]) -> None:
    """An ``update`` step: its result, or the type of the failure that rejected it."""
    what = f"{handle.id}: update {step['update']}"
    try:
        got: dict[str, Any] = {
            "result": await handle.execute_update(step["update"], args=step["args"])
        }
    except WorkflowUpdateFailedError as err:
        cause = err.__cause__
        got = {"rejected": cause.type if isinstance(cause, ApplicationError) else repr(cause)}
    if "rejected" in step:
        assert got == {"rejected": step["rejected"]}, what
    else:
        assert got == {"result": step["result"]}, what


def _duration(text: str) -> timedelta:
    """The scenario files' durations: ``"<n> days"`` or ``"<n> hours"``
    (``"1 hour"``, ``"1 day"``)."""
    n, unit = text.split()
    return timedelta(**{unit if unit.endswith("s") else f"{unit}s": int(n)})
