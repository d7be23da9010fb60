"""The deterministic event loop: timers, conditions, cancellation, failures
and the determinism guards, driven through the fake engine."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from baton import workflow
from baton.exceptions import ActivityError, ApplicationError, CancelledError
from baton.testing import Replayer
from baton.workflow import ActivityCancellationType
from tests.fakeserver import T0, FakeServer

S = timedelta(seconds=10)


def commands(answer: dict) -> list[tuple[str, dict]]:
    return [(c["command_type"], c["attributes"]) for c in answer["commands"]]


# --- time, randomness, info ---------------------------------------------------------------


@workflow.defn
class Clocky:
    @workflow.run
    async def run(self) -> dict:
        first = workflow.now()
        await asyncio.sleep(60)
        info = workflow.info()
        return {
            "first": first.isoformat(),
            "second": workflow.now().isoformat(),
            "loop_time": asyncio.get_running_loop().time() == workflow.time(),
            "random": workflow.random().randint(0, 1_000_000),
            "uuid": str(workflow.uuid4()),
            "id": info.workflow_id,
            "run": info.run_id,
            "type": info.workflow_type,
            "attempt": info.attempt,
        }


def test_now_is_the_task_start_time_and_random_is_seeded_by_the_run() -> None:
    a = FakeServer(Clocky, run_id="run-a")
    out = a.run()["result"]
    started = [e for e in a.history if e["event_type"] == "WorkflowTaskStarted"]
    assert (
        out["first"]
        == datetime.fromisoformat(started[0]["event_time"].replace("Z", "+00:00")).isoformat()
    )
    assert (
        out["second"]
        == datetime.fromisoformat(started[1]["event_time"].replace("Z", "+00:00")).isoformat()
    )
    assert out["loop_time"] is True
    assert (out["id"], out["run"], out["type"], out["attempt"]) == ("wf-1", "run-a", "Clocky", 1)
    # Same run id: same values (replay-safe); another run: different ones.
    b = FakeServer(Clocky, run_id="run-a")
    assert b.run()["result"]["random"] == out["random"]
    c = FakeServer(Clocky, run_id="run-c")
    out_c = c.run()["result"]
    assert (out_c["random"], out_c["uuid"]) != (out["random"], out["uuid"])
    assert uuid.UUID(out["uuid"]).version == 4
    assert datetime.fromisoformat(out["first"]) > T0.astimezone(timezone.utc)


# --- determinism guards -------------------------------------------------------------------


def _calls() -> dict[str, object]:
    from datetime import datetime as dt

    return {
        "datetime.now": lambda: dt.now(),
        "datetime.utcnow": lambda: datetime.utcnow(),
        "time.time": lambda: time.time(),
        "random.random": lambda: random.random(),
        "random.randint": lambda: random.randint(1, 6),
        "uuid.uuid4": lambda: uuid.uuid4(),
        "open": lambda: open(__file__),
        "time.sleep": lambda: time.sleep(0.01),
    }


@workflow.defn
class Naughty:
    @workflow.run
    async def run(self, what: str) -> object:
        return _calls()[what]()  # type: ignore[operator]


@pytest.mark.parametrize("what", sorted(_calls()))
def test_non_deterministic_calls_fail_the_workflow_task_with_a_clear_error(what: str) -> None:
    answer = FakeServer(Naughty, [what]).workflow_task()
    failure = answer["failure"]
    assert failure["cause"] == "WORKFLOW_WORKER_UNHANDLED_FAILURE"
    assert failure["failure"]["type"] == "RestrictedWorkflowAccessError"
    assert "inside a workflow" in failure["failure"]["message"]
    # The guard is gone once the workflow loop stops.
    assert _calls()["time.time"]() is not None  # type: ignore[operator]


def test_guards_can_be_switched_off() -> None:
    from baton._workflow_instance import handle_workflow_task

    server = FakeServer(Naughty, ["random.random"])
    server.add("WorkflowTaskStarted", scheduled_event_id=2)
    answer = handle_workflow_task(
        server.defn, server.request(server.history), determinism_checks=False
    )  # type: ignore[arg-type]
    assert answer["commands"][0]["command_type"] == "CompleteWorkflowExecution"


@workflow.defn
class Logs:
    @workflow.run
    async def run(self) -> str:
        workflow.logger.info("hello from a workflow")
        await asyncio.sleep(1)
        workflow.logger.info("after the timer")
        return "ok"


def test_workflow_logger_is_allowed_and_silent_on_replay(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="baton.workflow")
    server = FakeServer(Logs)
    assert server.run()["result"] == "ok"
    messages = [r.getMessage() for r in caplog.records if r.name == "baton.workflow"]
    # Two tasks; the first message is replayed (silently) by the second.
    assert sum("hello from a workflow" in m for m in messages) == 1
    assert sum("after the timer" in m for m in messages) == 1


# --- failures -------------------------------------------------------------------------------


@workflow.defn
class Fails:
    @workflow.run
    async def run(self, how: str) -> None:
        if how == "application":
            raise ApplicationError(
                "no such customer", {"id": 7}, type="CustomerMissing", non_retryable=True
            )
        if how == "bug":
            raise ValueError("oops")
        if how == "custom":
            raise KeyError("custom failure type")


@workflow.defn(name="FailsCustom", failure_exception_types=[KeyError])
class FailsCustom(Fails):
    pass


def test_application_error_fails_the_workflow() -> None:
    answer = FakeServer(Fails, ["application"]).workflow_task()
    ((ctype, attrs),) = commands(answer)
    assert ctype == "FailWorkflowExecution"
    f = attrs["failure"]
    assert (f["message"], f["type"], f["non_retryable"], f["details"]) == (
        "no such customer",
        "CustomerMissing",
        True,
        [{"id": 7}],
    )
    assert "stack_trace" in f


def test_other_exceptions_fail_the_task_not_the_workflow() -> None:
    answer = FakeServer(Fails, ["bug"]).workflow_task()
    assert answer["failure"]["cause"] == "WORKFLOW_WORKER_UNHANDLED_FAILURE"
    assert answer["failure"]["failure"]["type"] == "ValueError"
    assert answer["failure"]["failure"]["message"] == "oops"


def test_failure_exception_types_fail_the_workflow() -> None:
    answer = FakeServer(FailsCustom, ["custom"]).workflow_task()
    assert commands(answer)[0][0] == "FailWorkflowExecution"


def test_unknown_workflow_type_fails_the_task() -> None:
    from baton._workflow_instance import handle_workflow_task

    server = FakeServer(Fails, ["x"])
    server.add("WorkflowTaskStarted", scheduled_event_id=2)
    answer = handle_workflow_task(None, server.request(server.history))
    assert "not registered" in answer["failure"]["failure"]["message"]


def test_bad_input_fails_the_task() -> None:
    @workflow.defn(name="Typed")
    class Typed:
        @workflow.run
        async def run(self, n: int) -> int:
            return n

    answer = FakeServer(Typed, ["not a number"]).workflow_task()
    assert answer["failure"]["cause"] == "WORKFLOW_WORKER_UNHANDLED_FAILURE"
    assert "cannot decode the input" in answer["failure"]["failure"]["message"]


@workflow.defn
class Uncaught:
    @workflow.run
    async def run(self) -> str:
        return await workflow.execute_activity("pay", start_to_close_timeout=S)


def test_uncaught_activity_error_fails_the_workflow_with_the_cause_chain() -> None:
    server = FakeServer(Uncaught)
    server.workflow_task()
    server.fail_activity(
        "1", {"message": "declined", "type": "CardDeclined", "non_retryable": True}
    )
    ((ctype, attrs),) = commands(server.workflow_task())
    assert ctype == "FailWorkflowExecution"
    f = attrs["failure"]
    assert (f["type"], f["kind"]) == ("ActivityError", "ACTIVITY")
    assert f["activity_failure_info"]["activity_type"] == "pay"
    assert f["activity_failure_info"]["retry_state"] == "NON_RETRYABLE_FAILURE"
    assert (f["cause"]["type"], f["cause"]["message"], f["cause"]["non_retryable"]) == (
        "CardDeclined",
        "declined",
        True,
    )


def test_workflow_task_failed_attempts_are_skipped_on_replay() -> None:
    server = FakeServer(Uncaught)
    server.workflow_task()
    # A failed attempt of the next task (say a bug, since fixed).
    server.complete_activity("1", "paid")
    started = server.add("WorkflowTaskStarted", scheduled_event_id=server.wt_scheduled)
    server.add(
        "WorkflowTaskFailed",
        scheduled_event_id=server.wt_scheduled,
        started_event_id=started,
        cause="WORKFLOW_WORKER_UNHANDLED_FAILURE",
        failure={"message": "bug"},
    )
    server.wt_scheduled = server.add(
        "WorkflowTaskScheduled", task_queue="q", start_to_close_timeout="10s", attempt=2
    )
    server.wt_pending = True
    assert commands(server.workflow_task()) == [("CompleteWorkflowExecution", {"result": "paid"})]


# --- conditions and timers ------------------------------------------------------------------


@workflow.defn
class Conditions:
    def __init__(self) -> None:
        self.done = False

    @workflow.run
    async def run(self) -> list[str]:
        out: list[str] = []
        try:
            await workflow.wait_condition(lambda: self.done, timeout=timedelta(seconds=5))
        except asyncio.TimeoutError:
            out.append("timed out")

        async def work() -> None:
            await workflow.execute_activity("work", start_to_close_timeout=S)
            self.done = True

        task = asyncio.get_running_loop().create_task(work())
        await workflow.wait_condition(lambda: self.done)
        await task
        out.append("condition met")
        return out


def test_wait_condition_times_out_on_a_durable_timer_and_wakes_on_state() -> None:
    server = FakeServer(Conditions)
    assert commands(server.workflow_task()) == [
        ("StartTimer", {"timer_id": "1", "start_to_fire_timeout": "5s"})
    ]
    server.fire_timer("1")
    ((ctype, attrs),) = commands(server.workflow_task())
    assert (ctype, attrs["activity_type"]) == ("ScheduleActivityTask", "work")
    server.complete_activity("1", None)
    assert commands(server.workflow_task()) == [
        ("CompleteWorkflowExecution", {"result": ["timed out", "condition met"]})
    ]


@workflow.defn
class Race:
    @workflow.run
    async def run(self) -> str:
        act = workflow.start_activity("slow", start_to_close_timeout=S)
        try:
            return await asyncio.wait_for(act, timeout=30)
        except (asyncio.TimeoutError, ActivityError):
            # On timeout wait_for cancels the activity task, which resolves
            # (TRY_CANCEL) with ActivityError, as in Temporal.
            return "gave up"


def test_wait_for_cancels_its_timer_when_the_activity_wins() -> None:
    server = FakeServer(Race)
    cmds = commands(server.workflow_task())
    assert [c for c, _ in cmds] == ["ScheduleActivityTask", "StartTimer"]
    server.complete_activity("1", "fast enough")
    assert commands(server.workflow_task()) == [
        ("CancelTimer", {"timer_id": "1"}),
        ("CompleteWorkflowExecution", {"result": "fast enough"}),
    ]
    assert [e["event_type"] for e in server.history][-2:] == [
        "TimerCanceled",
        "WorkflowExecutionCompleted",
    ]
    # And the timer path: the activity is cancelled (TRY_CANCEL) when the timer wins.
    server = FakeServer(Race)
    server.workflow_task()
    server.fire_timer("1")
    assert commands(server.workflow_task()) == [
        ("RequestCancelActivityTask", {"activity_id": "1"}),
        ("CompleteWorkflowExecution", {"result": "gave up"}),
    ]
    # Both recorded histories replay.
    from baton.testing import Replayer

    Replayer(workflows=[Race]).replay_workflow_sync(server.history)


def test_a_cancel_dropped_by_the_server_still_replays() -> None:
    """The timer fired while the task that cancelled it was in flight: the
    server drops the CancelTimer (no TimerCanceled event)."""
    server = FakeServer(Race)
    server.workflow_task()
    # The activity completes and the timer fires in the same window.
    server.complete_activity("1", "tie")
    server.fire_timer("1")
    answer = server.workflow_task()
    # Which of the two wins depends on asyncio's wait_for internals (3.12
    # rebuilt it on asyncio.timeout), but it is the same on every replay.
    ((ctype, attrs),) = commands(answer)
    assert ctype == "CompleteWorkflowExecution" and attrs["result"] in ("tie", "gave up")
    from baton.testing import Replayer

    Replayer(workflows=[Race]).replay_workflow_sync(server.history)


@workflow.defn
class FirstCompleted:
    @workflow.run
    async def run(self) -> str:
        a = workflow.start_activity("a", start_to_close_timeout=S)
        b = asyncio.get_running_loop().create_task(workflow.sleep(3600))
        done, _ = await asyncio.wait([a, b], return_when=asyncio.FIRST_COMPLETED)
        return "activity" if a in done else "timer"


def test_asyncio_wait_over_an_activity_and_a_timer() -> None:
    server = FakeServer(FirstCompleted)
    assert [c for c, _ in commands(server.workflow_task())] == [
        "ScheduleActivityTask",
        "StartTimer",
    ]
    server.fire_timer("1")
    assert commands(server.workflow_task())[-1] == (
        "CompleteWorkflowExecution",
        {"result": "timer"},
    )


# --- activity cancellation --------------------------------------------------------------------


@workflow.defn
class CancelActivity:
    @workflow.run
    async def run(self, mode: int, same_task: bool) -> str:
        handle = workflow.start_activity(
            "long", start_to_close_timeout=S, cancellation_type=ActivityCancellationType(mode)
        )
        if not same_task:
            await asyncio.sleep(1)
        handle.cancel()
        try:
            await handle
        except ActivityError as err:
            assert isinstance(err.cause, CancelledError)
            return f"cancelled:{err.activity_id}"
        return "finished"


def test_try_cancel_requests_cancellation_and_resolves_at_once() -> None:
    server = FakeServer(CancelActivity, [ActivityCancellationType.TRY_CANCEL, False])
    server.workflow_task()
    server.fire_timer("1")
    assert commands(server.workflow_task()) == [
        ("RequestCancelActivityTask", {"activity_id": "1"}),
        ("CompleteWorkflowExecution", {"result": "cancelled:1"}),
    ]


def test_cancelling_before_the_command_is_sent_drops_it() -> None:
    server = FakeServer(CancelActivity, [ActivityCancellationType.TRY_CANCEL, True])
    assert commands(server.workflow_task()) == [
        ("CompleteWorkflowExecution", {"result": "cancelled:1"})
    ]


def test_wait_cancellation_completed_waits_for_the_canceled_event() -> None:
    server = FakeServer(
        CancelActivity, [ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, False]
    )
    server.workflow_task()
    server.fire_timer("1")
    assert commands(server.workflow_task()) == [("RequestCancelActivityTask", {"activity_id": "1"})]
    server.cancel_activity("1", details=["stopped at 40%"])
    assert commands(server.workflow_task()) == [
        ("CompleteWorkflowExecution", {"result": "cancelled:1"})
    ]


def test_abandon_sends_nothing() -> None:
    server = FakeServer(CancelActivity, [ActivityCancellationType.ABANDON, False])
    server.workflow_task()
    server.fire_timer("1")
    assert commands(server.workflow_task()) == [
        ("CompleteWorkflowExecution", {"result": "cancelled:1"})
    ]


# --- activity options on the wire --------------------------------------------------------------


@workflow.defn
class Options:
    @workflow.run
    async def run(self) -> None:
        from baton.common import RetryPolicy

        await workflow.execute_activity(
            "opts",
            args=[1, "two"],
            task_queue="other",
            schedule_to_close_timeout=timedelta(minutes=5),
            schedule_to_start_timeout=timedelta(seconds=30),
            start_to_close_timeout=timedelta(seconds=1.5),
            heartbeat_timeout=timedelta(milliseconds=500),
            retry_policy=RetryPolicy(maximum_attempts=3, non_retryable_error_types=["Fatal"]),
            activity_id="custom-id",
        )


def test_schedule_activity_command_carries_every_option() -> None:
    ((ctype, attrs),) = commands(FakeServer(Options).workflow_task())
    assert ctype == "ScheduleActivityTask"
    assert attrs == {
        "activity_id": "custom-id",
        "activity_type": "opts",
        "input": [1, "two"],
        "task_queue": "other",
        "schedule_to_close_timeout": "300s",
        "schedule_to_start_timeout": "30s",
        "start_to_close_timeout": "1.5s",
        "heartbeat_timeout": "0.5s",
        "retry_policy": {
            "initial_interval": "1s",
            "backoff_coefficient": 2.0,
            "maximum_attempts": 3,
            "non_retryable_error_types": ["Fatal"],
        },
    }


@workflow.defn
class NoTimeout:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity("x")


def test_missing_activity_timeout_is_a_clear_task_failure() -> None:
    answer = FakeServer(NoTimeout).workflow_task()
    assert "start_to_close_timeout" in answer["failure"]["failure"]["message"]


@workflow.defn
class Parent:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_child_workflow(
            "Child",
            7,
            id="child-1",
            task_queue="kids",
            parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            execution_timeout=timedelta(minutes=5),
        )


def test_a_child_start_is_one_command_with_temporals_attributes() -> None:
    answer = FakeServer(Parent).workflow_task()
    assert answer["commands"] == [
        {
            "command_type": "StartChildWorkflowExecution",
            "attributes": {
                "workflow_id": "child-1",
                "workflow_type": "Child",
                "input": [7],
                "parent_close_policy": "ABANDON",
                "task_queue": "kids",
                "workflow_execution_timeout": "300s",
            },
        }
    ]


def test_workflow_functions_outside_a_workflow_raise() -> None:
    from baton.exceptions import BatonError

    with pytest.raises(BatonError, match="not in workflow"):
        workflow.now()
    assert workflow.in_workflow() is False


@workflow.defn
class Paginator:
    """Continues as new after each page, even from inside ``except
    Exception`` (ContinueAsNewError is a BaseException, as in Temporal)."""

    @workflow.run
    async def run(self, page: int) -> int:
        await workflow.execute_activity("fetch", page, start_to_close_timeout=timedelta(seconds=5))
        if page < 2:
            try:
                workflow.continue_as_new(
                    page + 1, task_queue="pages", run_timeout=timedelta(minutes=5), memo={"p": page}
                )
            except Exception:  # the point: it is not caught here
                return -1
        return page


def test_continue_as_new_closes_the_run_with_its_options_and_replays() -> None:
    server = FakeServer(Paginator, [1])
    server.workflow_task()
    server.complete_activity("1", "rows")
    answer = server.workflow_task()
    assert [c["command_type"] for c in answer["commands"]] == ["ContinueAsNewWorkflowExecution"]
    assert answer["commands"][0]["attributes"] == {
        "input": [2],
        "task_queue": "pages",
        "workflow_run_timeout": "300s",
        "memo": {"p": 1},
    }
    assert server.closed is not None and server.closed["status"] == "CONTINUED_AS_NEW"
    result = Replayer(workflows=[Paginator]).replay_workflow_sync(
        {"workflow_id": server.workflow_id, "events": server.history}
    )
    assert result.replay_failure is None
