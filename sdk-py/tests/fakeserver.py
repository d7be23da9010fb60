"""A small in-process stand-in for the server's engine, enough to drive
workflows through ``handle_workflow_task`` and produce histories shaped like
the server's (src/engine/decide.rs): WorkflowTaskCompleted followed by the
events of each command in order, then results that arrived meanwhile, then
the next WorkflowTaskScheduled/Started.

Tests that need the real server live in test_e2e.py; this one makes unit
tests of replay fast and deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from baton._protocol import format_timestamp, parse_duration
from baton._workflow_instance import handle_workflow_task
from baton.workflow import _Definition

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
HISTORIES = Path(__file__).parent / "histories"


class FakeServer:
    def __init__(
        self,
        workflow: type,
        args: list[Any] | None = None,
        *,
        workflow_id: str = "wf-1",
        run_id: str = "run-1",
        task_queue: str = "q",
    ) -> None:
        self.defn = _Definition.of(workflow)
        self.workflow_id = workflow_id
        self.run_id = run_id
        self.task_queue = task_queue
        self.now = T0
        self.history: list[dict[str, Any]] = []
        self.activities: dict[str, dict[str, Any]] = {}  # activity_id -> state
        self.timers: dict[str, dict[str, Any]] = {}
        # update_id -> admitted and accepted event ids (0: not yet)
        self.updates: dict[str, dict[str, int]] = {}
        self.closed: dict[str, Any] | None = None
        self.wt_pending = False
        self.answers: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.add(
            "WorkflowExecutionStarted",
            workflow_type=self.defn.name,
            task_queue=task_queue,
            input=args or [],
            workflow_task_timeout="10s",
            attempt=1,
        )
        self._schedule_wt()

    # --- history ---------------------------------------------------------------

    def add(self, event_type: str, **attributes: Any) -> int:
        self.now += timedelta(milliseconds=100)
        eid = len(self.history) + 1
        self.history.append(
            {
                "event_id": eid,
                "event_time": format_timestamp(self.now),
                "event_type": event_type,
                "attributes": attributes,
            }
        )
        return eid

    def _schedule_wt(self) -> None:
        if self.wt_pending or self.closed is not None:
            return
        self.wt_pending = True
        self.wt_scheduled = self.add(
            "WorkflowTaskScheduled",
            task_queue=self.task_queue,
            start_to_close_timeout="10s",
            attempt=1,
        )

    def request(self, history: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "type": "workflow_task",
            "namespace": "default",
            "task_token": "token",
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "workflow_type": self.defn.name,
            "task_queue": self.task_queue,
            "attempt": 1,
            "history": history,
            "history_length": len(history),
            "history_size_bytes": 0,
            "suggest_continue_as_new": False,
        }

    # --- the workflow task ---------------------------------------------------------

    def workflow_task(self, defn: _Definition | None = None) -> dict[str, Any]:
        """Pushes the pending workflow task and applies the answer."""
        assert self.wt_pending, "no workflow task pending"
        started = self.add("WorkflowTaskStarted", scheduled_event_id=self.wt_scheduled)
        request = self.request(list(self.history))
        self.requests.append(request)
        answer = handle_workflow_task(defn or self.defn, request)  # type: ignore[arg-type]
        self.answers.append(answer)
        self.wt_pending = False
        if "failure" in answer:
            self.add(
                "WorkflowTaskFailed",
                scheduled_event_id=self.wt_scheduled,
                started_event_id=started,
                cause=answer["failure"]["cause"],
                failure=answer["failure"]["failure"],
            )
            return answer
        completed = self.add(
            "WorkflowTaskCompleted", scheduled_event_id=self.wt_scheduled, started_event_id=started
        )
        for update_id, u in self.updates.items():
            if not u["accepted"]:
                u["accepted"] = self.add(
                    "WorkflowExecutionUpdateAccepted",
                    update_id=update_id,
                    admitted_event_id=u["admitted"],
                )
        for c in answer["commands"]:
            self._apply(c["command_type"], c["attributes"], completed)
        return answer

    def _apply(self, ctype: str, a: dict[str, Any], completed: int) -> None:
        if ctype == "ScheduleActivityTask":
            assert a["activity_id"] not in self.activities, (
                f"duplicate activity id {a['activity_id']}"
            )
            sched = self.add(
                "ActivityTaskScheduled",
                activity_id=a["activity_id"],
                activity_type=a["activity_type"],
                task_queue=a.get("task_queue", self.task_queue),
                input=a.get("input"),
                start_to_close_timeout=a.get("start_to_close_timeout")
                or a.get("schedule_to_close_timeout"),
                retry_policy=a.get("retry_policy") or {},
                workflow_task_completed_event_id=completed,
            )
            self.activities[a["activity_id"]] = {
                "scheduled": sched,
                "closed": False,
                "attrs": a,
                "cancel": False,
            }
        elif ctype == "RequestCancelActivityTask":
            act = self.activities[a["activity_id"]]
            if act["closed"]:
                return
            self.add(
                "ActivityTaskCancelRequested",
                scheduled_event_id=act["scheduled"],
                workflow_task_completed_event_id=completed,
            )
            act["cancel"] = True
        elif ctype == "StartTimer":
            assert a["timer_id"] not in self.timers, f"duplicate timer id {a['timer_id']}"
            sid = self.add(
                "TimerStarted",
                timer_id=a["timer_id"],
                start_to_fire_timeout=a["start_to_fire_timeout"],
                workflow_task_completed_event_id=completed,
            )
            fire_at = self.now + parse_duration(a["start_to_fire_timeout"])
            self.timers[a["timer_id"]] = {"started": sid, "fire_at": fire_at, "done": False}
        elif ctype == "CancelTimer":
            t = self.timers[a["timer_id"]]
            if t["done"]:
                return
            t["done"] = True
            self.add(
                "TimerCanceled",
                timer_id=a["timer_id"],
                started_event_id=t["started"],
                workflow_task_completed_event_id=completed,
            )
        elif ctype == "RecordMarker":
            self.add(
                "MarkerRecorded",
                marker_name=a["marker_name"],
                details=a.get("details"),
                workflow_task_completed_event_id=completed,
            )
        elif ctype == "CompleteWorkflowExecution":
            self.add(
                "WorkflowExecutionCompleted",
                result=a.get("result"),
                workflow_task_completed_event_id=completed,
            )
            self.closed = {"status": "COMPLETED", "result": a.get("result")}
        elif ctype == "FailWorkflowExecution":
            self.add(
                "WorkflowExecutionFailed",
                failure=a["failure"],
                retry_state="RETRY_POLICY_NOT_SET",
                workflow_task_completed_event_id=completed,
            )
            self.closed = {"status": "FAILED", "failure": a["failure"]}
        elif ctype == "CancelWorkflowExecution":
            self.add("WorkflowExecutionCanceled", workflow_task_completed_event_id=completed)
            self.closed = {"status": "CANCELED"}
        elif ctype == "ContinueAsNewWorkflowExecution":
            self.add(
                "WorkflowExecutionContinuedAsNew",
                new_execution_run_id="next-run",
                workflow_type=a.get("workflow_type") or self.defn.name,
                task_queue=a.get("task_queue") or "q",
                input=a.get("input"),
                workflow_task_timeout="10s",
                initiator="WORKFLOW",
                workflow_task_completed_event_id=completed,
            )
            self.closed = {"status": "CONTINUED_AS_NEW", "attributes": a}
        elif ctype == "CompleteWorkflowUpdate":
            outcome = {"failure": a["failure"]} if "failure" in a else {"result": a.get("result")}
            self.add(
                "WorkflowExecutionUpdateCompleted",
                update_id=a["update_id"],
                accepted_event_id=self.updates[a["update_id"]]["accepted"],
                workflow_task_completed_event_id=completed,
                **outcome,
            )
        elif ctype == "StartChildWorkflowExecution":
            self.add(
                "StartChildWorkflowExecutionInitiated",
                **a,
                workflow_task_completed_event_id=completed,
            )
        elif ctype in ("SignalExternalWorkflowExecution", "RequestCancelExternalWorkflowExecution"):
            target = {"workflow_id": a["workflow_id"]}
            rest = {k: v for k, v in a.items() if k not in ("workflow_id", "run_id")}
            self.add(
                f"{ctype}Initiated",
                workflow_execution=target,
                **rest,
                workflow_task_completed_event_id=completed,
            )
        else:
            raise AssertionError(f"unknown command {ctype}")

    # --- results -----------------------------------------------------------------------

    def open_activities(self) -> list[str]:
        return [aid for aid, a in self.activities.items() if not a["closed"]]

    def complete_activity(self, activity_id: str, result: Any, attempt: int = 1) -> None:
        act = self.activities[activity_id]
        assert not act["closed"]
        started = self.add(
            "ActivityTaskStarted", scheduled_event_id=act["scheduled"], attempt=attempt
        )
        self.add(
            "ActivityTaskCompleted",
            scheduled_event_id=act["scheduled"],
            started_event_id=started,
            result=result,
        )
        act["closed"] = True
        self._schedule_wt()

    def fail_activity(
        self,
        activity_id: str,
        failure: dict[str, Any],
        retry_state: str = "NON_RETRYABLE_FAILURE",
        attempt: int = 1,
    ) -> None:
        act = self.activities[activity_id]
        started = self.add(
            "ActivityTaskStarted", scheduled_event_id=act["scheduled"], attempt=attempt
        )
        self.add(
            "ActivityTaskFailed",
            scheduled_event_id=act["scheduled"],
            started_event_id=started,
            failure=failure,
            retry_state=retry_state,
        )
        act["closed"] = True
        self._schedule_wt()

    def cancel_activity(self, activity_id: str, details: Any = None) -> None:
        act = self.activities[activity_id]
        started = self.add("ActivityTaskStarted", scheduled_event_id=act["scheduled"], attempt=1)
        self.add(
            "ActivityTaskCanceled",
            scheduled_event_id=act["scheduled"],
            started_event_id=started,
            details=details,
        )
        act["closed"] = True
        self._schedule_wt()

    def signal(self, name: str, *args: Any, request_id: str = "") -> None:
        self.add(
            "WorkflowExecutionSignaled",
            signal_name=name,
            input=list(args),
            identity="test",
            request_id=request_id,
        )
        self._schedule_wt()

    def update(self, name: str, *args: Any, update_id: str = "u1") -> None:
        """Records an update the server admitted (its validator ran)."""
        admitted = self.add(
            "WorkflowExecutionUpdateAdmitted",
            update_id=update_id,
            update_name=name,
            input=list(args),
        )
        self.updates[update_id] = {"admitted": admitted, "accepted": 0}
        self._schedule_wt()

    def request_cancel(self, reason: str = "") -> None:
        self.add("WorkflowExecutionCancelRequested", cause=reason, identity="test")
        self._schedule_wt()

    def fire_timer(self, timer_id: str) -> None:
        t = self.timers[timer_id]
        assert not t["done"]
        self.now = max(self.now, t["fire_at"])
        self.add("TimerFired", timer_id=timer_id, started_event_id=t["started"])
        t["done"] = True
        self._schedule_wt()

    def fire_next_timer(self) -> bool:
        pending = sorted((t["fire_at"], tid) for tid, t in self.timers.items() if not t["done"])
        if not pending:
            return False
        self.fire_timer(pending[0][1])
        return True

    def run(
        self,
        activities: dict[str, Callable[..., Any]] | None = None,
        *,
        max_tasks: int = 100,
    ) -> dict[str, Any]:
        """Runs to the end: activities by the given functions (an exception
        fails it non-retryably with its class name as type), then timers in
        fire order."""
        activities = activities or {}
        for _ in range(max_tasks):
            if self.wt_pending:
                answer = self.workflow_task()
                if "failure" in answer:
                    return answer
                continue
            if self.closed is not None:
                return self.closed
            progressed = False
            for aid in self.open_activities():
                act = self.activities[aid]
                fn = activities.get(act["attrs"]["activity_type"])
                if fn is None:
                    continue
                progressed = True
                try:
                    result = fn(*(act["attrs"].get("input") or []))
                except Exception as e:
                    self.fail_activity(aid, {"message": str(e), "type": type(e).__name__})
                else:
                    self.complete_activity(aid, result)
            if progressed:
                continue
            if not self.fire_next_timer():
                raise AssertionError(
                    f"workflow is stuck: {json.dumps(self.history, indent=1)[-2000:]}"
                )
        raise AssertionError("too many workflow tasks")

    def save(self, name: str) -> Path:
        HISTORIES.mkdir(exist_ok=True)
        path = HISTORIES / f"{name}.json"
        data = {"workflow_id": self.workflow_id, "run_id": self.run_id, "events": self.history}
        path.write_text(json.dumps(data, indent=1) + "\n")
        return path
