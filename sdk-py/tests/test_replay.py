"""Replay: recorded histories against current and changed workflow code."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from baton.client import WorkflowHistory
from baton.exceptions import NonDeterminismError
from baton.testing import Replayer
from tests.fakeserver import FakeServer
from tests.scenarios import (
    Onboarding,
    OnboardingPatched,
    OnboardingReordered,
    OnboardingWithoutSleep,
    OrderWithFallback,
    TrialExpiry,
)

HISTORIES = Path(__file__).parent / "histories"
ONBOARDING_ACTIVITIES = {
    "create_account": lambda u: f"acct-{u['id']}",
    "send_welcome_email": lambda u: f"welcome:{u['email']}",
    "provision_workspace": lambda a: f"workspace:{a}",
    "check_in": lambda a: f"checked-in:{a}",
    "audit": lambda a: f"audited:{a}",
}


def load(name: str) -> dict[str, Any]:
    return json.loads((HISTORIES / f"{name}.json").read_text())


def record_if_asked(server: FakeServer, name: str) -> None:
    """BATON_RECORD_HISTORIES=1 rewrites the fixtures from the fake engine."""
    if os.environ.get("BATON_RECORD_HISTORIES") == "1" or not (HISTORIES / f"{name}.json").exists():
        server.save(name)


def test_onboarding_runs_to_completion_and_its_history_is_the_recorded_one() -> None:
    server = FakeServer(Onboarding, [{"id": "u1", "email": "u1@example.com", "plan": "pro"}])
    outcome = server.run(ONBOARDING_ACTIVITIES)
    assert outcome == {
        "status": "COMPLETED",
        "result": {
            "account": "acct-u1",
            "steps": [
                "acct-u1",
                "welcome:u1@example.com",
                "workspace:acct-u1",
                "checked-in:acct-u1",
            ],
        },
    }
    types = [e["event_type"] for e in server.history]
    assert types.count("ActivityTaskScheduled") == 4
    timer = next(e for e in server.history if e["event_type"] == "TimerStarted")
    assert timer["attributes"]["start_to_fire_timeout"] == "604800s"
    # The two parallel activities were scheduled by the same workflow task.
    scheduled = [e for e in server.history if e["event_type"] == "ActivityTaskScheduled"]
    assert (
        scheduled[1]["attributes"]["workflow_task_completed_event_id"]
        == scheduled[2]["attributes"]["workflow_task_completed_event_id"]
    )
    record_if_asked(server, "onboarding")
    assert server.history == load("onboarding")["events"]


async def test_recorded_history_replays_with_the_same_code() -> None:
    result = await Replayer(workflows=[Onboarding]).replay_workflow(load("onboarding"))
    assert result.replay_failure is None


@pytest.mark.parametrize(
    ("workflow", "event_id", "expected", "actual"),
    [
        (
            OnboardingReordered,
            5,
            'ActivityTaskScheduled(activity_type="create_account", activity_id="1")',
            'ScheduleActivityTask(activity_type="send_welcome_email", activity_id="1")',
        ),
        (
            OnboardingWithoutSleep,
            None,
            'TimerStarted(timer_id="1")',
            'ScheduleActivityTask(activity_type="check_in", activity_id="4")',
        ),
    ],
)
async def test_changed_code_raises_non_determinism_with_event_and_both_sides(
    workflow: type, event_id: int | None, expected: str, actual: str
) -> None:
    history = load("onboarding")
    with pytest.raises(NonDeterminismError) as info:
        await Replayer(workflows=[workflow]).replay_workflow(history)
    err = info.value
    assert err.expected == expected
    assert err.actual == actual
    if event_id is not None:
        assert err.event_id == event_id
    assert f"at event {err.event_id}" in str(err)
    started = next(e for e in history["events"] if e["event_type"] == "TimerStarted")
    if workflow is OnboardingWithoutSleep:
        assert err.event_id == started["event_id"]


async def test_history_recorded_by_the_real_server_replays() -> None:
    """tests/histories/server_onboarding.json comes from test_e2e (the
    server's own event shapes, including lazily written ActivityTaskStarted
    and results that arrived while a task was in flight)."""
    history = load("server_onboarding")
    await Replayer(workflows=[Onboarding]).replay_workflow(history)
    with pytest.raises(NonDeterminismError, match="create_account"):
        await Replayer(workflows=[OnboardingReordered]).replay_workflow(history)
    with pytest.raises(NonDeterminismError, match="TimerStarted"):
        await Replayer(workflows=[OnboardingWithoutSleep]).replay_workflow(history)
    # The patch was not there when it ran: the patched code skips the new step.
    await Replayer(workflows=[OnboardingPatched]).replay_workflow(history)


async def test_replay_failure_can_be_returned_instead_of_raised() -> None:
    result = await Replayer(workflows=[OnboardingReordered]).replay_workflow(
        load("onboarding"), raise_on_replay_failure=False
    )
    assert isinstance(result.replay_failure, NonDeterminismError)


def test_non_determinism_during_a_task_is_a_workflow_task_failure() -> None:
    server = FakeServer(Onboarding, [{"id": "u1", "email": "e"}])
    server.workflow_task()
    server.complete_activity("1", "acct-u1")
    answer = server.workflow_task(defn=_defn(OnboardingReordered))
    assert answer["failure"]["cause"] == "NON_DETERMINISTIC_ERROR"
    failure = answer["failure"]["failure"]
    assert failure["type"] == "NonDeterminismError"
    assert "event 5" in failure["message"]
    assert "create_account" in failure["message"] and "send_welcome_email" in failure["message"]
    # The workflow itself did not fail: the run waits for a fix.
    assert server.closed is None


def test_patched_takes_the_old_path_on_old_histories_and_the_new_one_on_new_runs() -> None:
    # Old history, new code: the patch is absent, the audit step is skipped.
    replay = Replayer(workflows=[OnboardingPatched]).replay_workflow_sync(load("onboarding"))
    assert replay.replay_failure is None
    # New run: the marker is recorded and the audit activity runs.
    server = FakeServer(OnboardingPatched, [{"id": "u2", "email": "e2"}], run_id="run-2")
    outcome = server.run(ONBOARDING_ACTIVITIES)
    assert outcome["result"]["steps"][1] == "audited:acct-u2"
    markers = [e for e in server.history if e["event_type"] == "MarkerRecorded"]
    assert [m["attributes"]["marker_name"] for m in markers] == ["core_patch"]
    assert markers[0]["attributes"]["details"] == {"patch_id": "audit-step", "deprecated": False}
    record_if_asked(server, "onboarding_patched")
    # The patched history replays with the patched code...
    Replayer(workflows=[OnboardingPatched]).replay_workflow_sync(load("onboarding_patched"))
    # ...and not with the code from before the patch.
    with pytest.raises(NonDeterminismError):
        Replayer(workflows=[Onboarding]).replay_workflow_sync(load("onboarding_patched"))


def test_order_failure_cause_chain_reaches_the_workflow() -> None:
    server = FakeServer(OrderWithFallback, [{"id": "o1", "amount_cents": 100, "card": "declined"}])
    server.workflow_task()
    server.fail_activity(
        "1",
        {"message": "card declined", "type": "CardDeclined", "details": [{"order": "o1"}]},
    )
    server.workflow_task()
    assert server.closed == {
        "status": "COMPLETED",
        "result": "fallback:CardDeclined:card declined:[{'order': 'o1'}]",
    }


def test_trial_expiry_uses_consecutive_timers() -> None:
    server = FakeServer(TrialExpiry, [[86400, 3 * 86400, 0.25]])
    outcome = server.run({"notify": lambda m: f"sent:{m}"})
    assert outcome["result"] == ["sent:reminder 1", "sent:reminder 2", "sent:reminder 3"]
    timers = [e["attributes"] for e in server.history if e["event_type"] == "TimerStarted"]
    assert [(t["timer_id"], t["start_to_fire_timeout"]) for t in timers] == [
        ("1", "86400s"),
        ("2", "259200s"),
        ("3", "0.25s"),
    ]
    record_if_asked(server, "trial_expiry")
    Replayer(workflows=[TrialExpiry]).replay_workflow_sync(load("trial_expiry"))


def test_history_shapes_accepted_by_the_replayer() -> None:
    data = load("trial_expiry")
    r = Replayer(workflows=[TrialExpiry])
    r.replay_workflow_sync(data)  # fetch_history / GET …/history shape
    r.replay_workflow_sync(json.dumps(data))  # JSON text
    r.replay_workflow_sync(data["events"])  # a bare list
    r.replay_workflow_sync(WorkflowHistory.from_json("x", {"events": data["events"]}))
    with pytest.raises(ValueError, match="not among"):
        Replayer(workflows=[Onboarding]).replay_workflow_sync(data)


def _defn(cls: type) -> Any:
    from baton.workflow import _Definition

    return _Definition.of(cls)
