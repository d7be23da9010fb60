"""Sticky pushes against the replay contract (docs/protocol.md §5.10, §14):
for every replay vector of ../tests/replay, an instance that answered an
earlier task of the vector's history and is then fed only the events that
followed (as a sticky push carries them) must answer exactly what a replay
of the whole history answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from baton._protocol import WorkflowTaskRequest
from baton._workflow_instance import NonDeterminismError, WorkflowInstance, WorkflowTaskFailure
from tests.test_replay_vectors import VECTORS, _definition, _strip


def _cuts(history: list[dict[str, Any]]) -> list[int]:
    """Indexes of the WorkflowTaskStarted events whose answer was taken."""
    return [
        i
        for i, e in enumerate(history[:-1])
        if e["event_type"] == "WorkflowTaskStarted"
        and history[i + 1]["event_type"] == "WorkflowTaskCompleted"
    ]


def _answer_events(history: list[dict[str, Any]], cut: int) -> set[int]:
    """The ids of the command events of the task answered at ``cut``."""
    out: set[int] = set()
    for e in history[cut + 2 :]:
        if e["event_type"].startswith("WorkflowTask"):
            break
        out.add(e["event_id"])
    return out


def _with(task: dict[str, Any], history: list[dict[str, Any]]) -> WorkflowTaskRequest:
    return cast(WorkflowTaskRequest, {**task, "history": history})


# The vectors with commands to answer (on non-determinism the app replays
# from the first event, so the others say nothing of sticky pushes).
ANSWERING = [p for p in VECTORS if "commands" in json.loads(p.read_text())["expect"]]


@pytest.mark.parametrize("path", ANSWERING, ids=[p.stem for p in ANSWERING])
def test_sticky_push_answers_as_the_replay(path: Path) -> None:
    vector = json.loads(path.read_text())
    expect = vector["expect"]
    task: dict[str, Any] = vector["workflow_task"]
    history: list[dict[str, Any]] = task["history"]
    definition = _definition(vector["script"])
    for cut in _cuts(history):
        inst = WorkflowInstance(definition, _with(task, history[: cut + 1]))
        try:
            inst.begin()
        except (NonDeterminismError, WorkflowTaskFailure):
            continue  # that task failed: the app keeps no instance
        if inst.is_closed_run():
            continue
        assert inst.ended_at == history[cut]["event_id"]
        try:
            assert inst.advance(_with(task, history[cut + 1 :])), f"cut at {cut}"
            assert _strip(inst.commands()) == expect["commands"], f"cut at {cut}"
        except NonDeterminismError as err:
            # Allowed only where the history was not written by this code:
            # the events of the answered task are not its answer (an old
            # code's history). The app then replays from the first event.
            assert err.event_id in _answer_events(history, cut), f"cut at {cut}: {err}"
            continue
        finally:
            inst.teardown()


def test_a_push_that_does_not_follow_on_is_not_applied() -> None:
    path = next(p for p in VECTORS if p.stem.endswith("activities_in_sequence"))
    vector = json.loads(path.read_text())
    task: dict[str, Any] = vector["workflow_task"]
    history: list[dict[str, Any]] = task["history"]
    cut = _cuts(history)[0]
    inst = WorkflowInstance(_definition(vector["script"]), _with(task, history[: cut + 1]))
    inst.begin()
    try:
        assert not inst.advance(_with(task, history[cut + 2 :])), "a gap"
        assert not inst.advance(_with(task, history[cut:])), "an overlap"
        assert not inst.advance(_with({**task, "run_id": "other"}, history[cut + 1 :]))
        assert inst.advance(_with(task, history[cut + 1 :]))
        assert _strip(inst.commands()) == vector["expect"]["commands"]
    finally:
        inst.teardown()
