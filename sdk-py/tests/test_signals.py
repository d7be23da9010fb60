"""Signals and cancellation requests in replay, driven through the fake
engine with hand-built histories (the server's e2e shapes are in
test_e2e.py)."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

from baton import workflow
from baton.exceptions import ApplicationError
from baton.testing import Replayer
from tests.fakeserver import FakeServer
from tests.scenarios import Decision, HoldReservation, PurchaseOrderApproval

S = timedelta(seconds=10)


def commands(answer: dict[str, Any]) -> list[str]:
    return [c["command_type"] for c in answer["commands"]]


def decision(approved: bool, approver: str = "ann") -> dict[str, Any]:
    return {"approved": approved, "approver": approver, "comment": ""}


async def replay(server: FakeServer, *workflows: type) -> None:
    await Replayer(workflows=list(workflows)).replay_workflow(
        {"workflow_id": server.workflow_id, "events": server.history}
    )


@workflow.defn
class Collector:
    def __init__(self) -> None:
        self.seen: list[str] = []

    @workflow.signal
    def add(self, item: str) -> None:
        self.seen.append(item)

    @workflow.signal(name="add_later")
    async def add_later(self, item: str) -> None:
        await asyncio.sleep(60)
        self.seen.append(f"later:{item}")

    @workflow.run
    async def run(self, first: str) -> list[str]:
        self.seen.append(f"run:{first}")
        result = await workflow.execute_activity("step", start_to_close_timeout=S)
        self.seen.append(f"activity:{result}")
        await workflow.wait_condition(lambda: "done" in self.seen)
        return self.seen


def test_signals_run_in_history_order_before_the_workflow_continues() -> None:
    server = FakeServer(Collector, ["x"])
    assert commands(server.workflow_task()) == ["ScheduleActivityTask"]
    # The activity's result comes first in history, the signals after it;
    # the handlers still run first in the activation (Temporal's job order).
    server.complete_activity("1", "r")
    server.signal("add", "a")
    server.signal("add", "b")
    assert commands(server.workflow_task()) == []
    server.signal("add", "done")
    answer = server.workflow_task()
    assert commands(answer) == ["CompleteWorkflowExecution"]
    assert answer["commands"][0]["attributes"]["result"] == [
        "run:x",
        "a",
        "b",
        "activity:r",
        "done",
    ]
    asyncio.run(replay(server, Collector))


def test_signals_before_the_first_task_reach_the_object_before_run() -> None:
    # Signal-with-start: WorkflowExecutionSignaled right after the start.
    server = FakeServer(Collector, ["x"])
    server.signal("add", "early")
    server.signal("add_later", "slow")
    assert commands(server.workflow_task()) == ["StartTimer", "ScheduleActivityTask"]
    server.complete_activity("1", "r")
    server.fire_timer("1")
    server.signal("add", "done")
    result = server.run()["result"]
    # "done" is a signal, so it runs before the timer's and activity's wake-ups.
    assert result == ["early", "run:x", "done", "later:slow", "activity:r"]
    asyncio.run(replay(server, Collector))


def test_unknown_signals_and_undecodable_input_are_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = FakeServer(Collector, ["x"])
    server.workflow_task()
    server.signal("nobody_listens", 1)
    server.signal("add", {"not": "a string"}, "extra")
    with caplog.at_level(logging.WARNING, logger="baton.workflow"):
        assert commands(server.workflow_task()) == []
    assert "nobody_listens" in caplog.text
    server.signal("add", "done")
    server.complete_activity("1", "r")
    assert server.run()["result"] == ["run:x", "done", "activity:r"]


@workflow.defn
class Strict:
    @workflow.signal
    def poke(self, value: int) -> None:
        if value < 0:
            raise ApplicationError("negative poke", type="BadPoke")
        if value == 0:
            raise RuntimeError("bug in the handler")

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


def test_a_failure_error_in_a_signal_handler_fails_the_workflow() -> None:
    server = FakeServer(Strict)
    server.workflow_task()
    server.signal("poke", -1)
    answer = server.workflow_task()
    assert commands(answer) == ["FailWorkflowExecution"]
    assert answer["commands"][0]["attributes"]["failure"]["type"] == "BadPoke"


def test_other_errors_in_a_signal_handler_fail_the_task() -> None:
    server = FakeServer(Strict)
    server.workflow_task()
    server.signal("poke", 0)
    answer = server.workflow_task()
    assert answer["failure"]["cause"] == "WORKFLOW_WORKER_UNHANDLED_FAILURE"
    assert "bug in the handler" in answer["failure"]["failure"]["message"]


# --- the purchase order -------------------------------------------------------------------


def approval_server() -> FakeServer:
    server = FakeServer(PurchaseOrderApproval, ["po-1"])
    assert commands(server.workflow_task()) == ["ScheduleActivityTask"]
    server.complete_activity("1", "notified:po-1")
    assert commands(server.workflow_task()) == ["StartTimer"]
    return server


def test_approval_expires_without_a_signal() -> None:
    server = approval_server()
    assert server.run()["result"] == "expired"
    asyncio.run(replay(server, PurchaseOrderApproval))


@pytest.mark.parametrize(("approved", "outcome"), [(True, "submitted"), (False, "rejected")])
def test_approval_signal_wakes_the_condition(approved: bool, outcome: str) -> None:
    server = approval_server()
    server.signal("approve", decision(approved))
    answer = server.workflow_task()
    assert commands(answer)[0] == "CancelTimer"
    result = server.run({"submit_order": lambda po: f"submitted:{po}"})
    assert result["result"] == outcome
    asyncio.run(replay(server, PurchaseOrderApproval))


def test_a_signal_in_the_same_task_as_the_timeout_wins() -> None:
    server = approval_server()
    server.fire_timer("1")
    server.signal("approve", decision(True))
    answer = server.workflow_task()
    # The signal runs first and the workflow cancels the timer, but its
    # TimerFired is in this task's history: there is nothing to cancel, and
    # the server would refuse a CancelTimer for a closed timer (protocol.md §14.4).
    assert commands(answer) == ["ScheduleActivityTask"]
    server.complete_activity("2", "submitted:po-1")
    assert server.run()["result"] == "submitted"
    asyncio.run(replay(server, PurchaseOrderApproval))


def test_signal_decodes_into_a_dataclass() -> None:
    seen: list[Any] = []

    @workflow.defn(name="Typed")
    class Typed:
        @workflow.signal
        def approve(self, d: Decision) -> None:
            seen.append(d)

        @workflow.run
        async def run(self) -> None:
            await workflow.wait_condition(lambda: bool(seen))

    server = FakeServer(Typed)
    server.signal("approve", decision(False, "bob"))
    assert server.run() == {"status": "COMPLETED", "result": None}
    assert seen[0] == Decision(approved=False, approver="bob")


# --- cancellation requests ---------------------------------------------------------------


def test_cancel_request_raises_cancelled_error_and_runs_the_compensation() -> None:
    server = FakeServer(HoldReservation, ["o-1"])
    server.workflow_task()
    server.complete_activity("1", "reserved:o-1")
    assert commands(server.workflow_task()) == ["StartTimer"]
    server.request_cancel("customer left")
    answer = server.workflow_task()
    assert commands(answer) == ["CancelTimer", "ScheduleActivityTask"]
    assert answer["commands"][1]["attributes"]["activity_type"] == "release_stock"
    server.complete_activity("2", "released:o-1")
    assert commands(server.workflow_task()) == ["CancelWorkflowExecution"]
    assert server.closed == {"status": "CANCELED"}
    asyncio.run(replay(server, HoldReservation))


def test_cancel_request_before_the_first_task_cancels_without_running() -> None:
    server = FakeServer(HoldReservation, ["o-1"])
    server.request_cancel()
    assert commands(server.workflow_task()) == ["CancelWorkflowExecution"]


@workflow.defn
class IgnoresCancel:
    @workflow.run
    async def run(self) -> str:
        try:
            await workflow.sleep(timedelta(hours=1))
        except asyncio.CancelledError:
            return "ignored"
        return "slept"


def test_a_workflow_may_swallow_the_cancellation() -> None:
    server = FakeServer(IgnoresCancel)
    server.workflow_task()
    server.request_cancel()
    assert server.run() == {"status": "COMPLETED", "result": "ignored"}


@workflow.defn
class CancelsDuringActivity:
    @workflow.run
    async def run(self) -> str:
        await workflow.execute_activity("slow", start_to_close_timeout=S)
        return "done"


def test_a_cancelled_activity_error_after_a_cancel_request_cancels_the_workflow() -> None:
    server = FakeServer(CancelsDuringActivity)
    server.workflow_task()
    server.request_cancel()
    # TRY_CANCEL: ActivityError(cause=CancelledError) propagates out of run.
    assert commands(server.workflow_task()) == [
        "RequestCancelActivityTask",
        "CancelWorkflowExecution",
    ]


@workflow.defn
class LastWord:
    def __init__(self) -> None:
        self.words: list[str] = []

    @workflow.signal
    def say(self, word: str) -> None:
        self.words.append(word)

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.execute_activity("step", start_to_close_timeout=S)
        return self.words


def test_a_signal_that_prevented_close_is_seen_by_the_next_task() -> None:
    """The server refuses to close while a signal is buffered
    (UNHANDLED_COMMAND) and sends a new task with it; the refused task's
    commands are dropped and its results are applied again, after the signal."""
    server = FakeServer(LastWord)
    server.workflow_task()
    server.complete_activity("1", None)
    started = server.add("WorkflowTaskStarted", scheduled_event_id=server.wt_scheduled)
    server.add(
        "WorkflowTaskFailed",
        scheduled_event_id=server.wt_scheduled,
        started_event_id=started,
        cause="UNHANDLED_COMMAND",
    )
    server.wt_pending = False
    server.signal("say", "wait")
    answer = server.workflow_task()
    assert commands(answer) == ["CompleteWorkflowExecution"]
    assert answer["commands"][0]["attributes"]["result"] == ["wait"]
    asyncio.run(replay(server, LastWord))
