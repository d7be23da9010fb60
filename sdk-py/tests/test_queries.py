"""Queries: a pushed history is replayed and a ``@workflow.query`` handler
answers from the resulting state; nothing is emitted."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import pytest

from baton import App, workflow
from baton._workflow_instance import handle_query
from baton.workflow import _Definition
from tests.fakeserver import FakeServer
from tests.scenarios import Decision, PurchaseOrderApproval
from tests.test_app import signed

SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def query_push(server: FakeServer, name: str, args: Any = None) -> dict[str, Any]:
    push = server.request(list(server.history))
    for key in ("task_token", "attempt", "history_size_bytes", "suggest_continue_as_new"):
        del push[key]
    push["type"] = "query"
    push["query_name"] = name
    if args is not None:
        push["query_args"] = args
    return push


def query(server: FakeServer, name: str, args: Any = None) -> dict[str, Any]:
    return handle_query(server.defn, query_push(server, name, args))


def approval_waiting() -> FakeServer:
    server = FakeServer(PurchaseOrderApproval, ["po-1"])
    server.workflow_task()
    server.complete_activity("1", "notified:po-1")
    server.workflow_task()
    return server


def test_a_query_answers_from_the_replayed_state_and_emits_nothing() -> None:
    server = FakeServer(PurchaseOrderApproval, ["po-1"])
    # Before the first workflow task: the start is applied for the query.
    assert query(server, "get_status") == {"result": "starting"}
    server.workflow_task()
    assert query(server, "get_status") == {"result": "starting"}
    server.complete_activity("1", "notified:po-1")
    server.workflow_task()
    before = json.dumps(server.history)
    assert query(server, "get_status") == {"result": "awaiting approval"}
    assert query(server, "get_decision") == {"result": None}
    assert json.dumps(server.history) == before


def test_a_query_sees_a_signal_the_next_task_will_apply() -> None:
    server = approval_waiting()
    server.signal("approve", {"approved": True, "approver": "ann", "comment": ""})
    assert query(server, "get_decision") == {
        "result": {"approved": True, "approver": "ann", "comment": ""}
    }
    assert query(server, "get_status") == {"result": "submitting"}


def test_a_closed_run_answers_queries() -> None:
    server = approval_waiting()
    server.signal("approve", {"approved": False, "approver": "bob", "comment": "no"})
    answer = server.workflow_task()
    assert answer["commands"][-1]["command_type"] == "CompleteWorkflowExecution"
    assert server.closed is not None
    assert query(server, "get_status") == {"result": "rejected"}
    assert query(server, "get_decision")["result"]["approver"] == "bob"


def test_an_unknown_query_fails_and_lists_the_known_ones() -> None:
    answer = query(approval_waiting(), "nope")
    assert set(answer) == {"failure"}
    message = answer["failure"]["message"]
    assert "'nope'" in message
    assert "known queries: [get_decision get_status]" in message
    assert answer["failure"]["type"] == "QueryError"


@workflow.defn
class Counter:
    def __init__(self) -> None:
        self.count = 0

    @workflow.signal
    def add(self, n: int) -> None:
        self.count += n

    @workflow.query
    def times(self, factor: int, extra: Decision | None = None) -> int:
        return self.count * factor + (1 if extra is not None and extra.approved else 0)

    @workflow.query
    def boom(self) -> int:
        raise ValueError("cannot count")

    @workflow.query
    async def waits(self) -> int:
        await asyncio.sleep(1)
        return self.count

    @workflow.query
    def schedules(self) -> int:
        workflow.start_activity("x", start_to_close_timeout=timedelta(seconds=1))
        return 0

    @workflow.query(dynamic=True)
    def anything(self, name: str, *args: Any) -> str:
        return f"{name}:{len(args)}"

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.count > 100)
        return self.count


def counter() -> FakeServer:
    server = FakeServer(Counter)
    server.workflow_task()
    server.signal("add", 3)
    server.workflow_task()
    return server


def test_arguments_are_decoded_by_the_handler_hints() -> None:
    server = counter()
    assert query(server, "times", [2]) == {"result": 6}
    assert query(server, "times", [2, {"approved": True, "approver": "a"}]) == {"result": 7}


def test_bad_arguments_a_raising_handler_async_and_commands_are_failures() -> None:
    server = counter()
    bad = query(server, "times", ["two", {"approved": "x"}])
    assert "failure" in bad
    boom = query(server, "boom")
    assert boom["failure"] == {
        "message": "cannot count",
        "type": "ValueError",
        "kind": "APPLICATION",
    }
    assert "async" in query(server, "waits")["failure"]["message"]
    assert "commands" in query(server, "schedules")["failure"]["message"]


def test_a_dynamic_handler_takes_the_unknown_names() -> None:
    assert query(counter(), "whatever", [1, 2]) == {"result": "whatever:2"}


def test_an_unregistered_workflow_type_fails_the_query() -> None:
    server = counter()
    answer = handle_query(None, query_push(server, "times", [1]))
    assert "not registered" in answer["failure"]["message"]


@workflow.defn
class Drifted:
    @workflow.query
    def status(self) -> str:
        return "?"

    @workflow.run
    async def run(self, po_id: str) -> str:
        await asyncio.sleep(5)
        return po_id


def test_a_nondeterministic_history_fails_the_query() -> None:
    server = approval_waiting()
    push = query_push(server, "status")
    answer = handle_query(_Definition.of(Drifted), push)
    assert answer["failure"]["type"] == "NonDeterminismError"


async def test_the_app_answers_a_signed_query_push() -> None:
    app = App(workflows=[PurchaseOrderApproval], signing_secret=SECRET)
    body = json.dumps(query_push(approval_waiting(), "get_status")).encode()
    response = await app.handle("POST", signed(body, SECRET), body)
    assert response.status == 200
    assert json.loads(response.body) == {"result": "awaiting approval"}


def test_a_query_logs_no_dropped_signal(caplog: pytest.LogCaptureFixture) -> None:
    server = approval_waiting()
    server.signal("unknown_signal", 1)
    with caplog.at_level(logging.WARNING, logger="baton.workflow"):
        assert query(server, "get_status") == {"result": "awaiting approval"}
    assert not caplog.records


def test_a_literal_push_with_a_signal_after_the_last_task() -> None:
    def event(eid: int, event_type: str, **attributes: Any) -> dict[str, Any]:
        return {
            "event_id": eid,
            "event_time": f"2025-01-01T00:00:0{eid}Z",
            "event_type": event_type,
            "attributes": attributes,
        }

    push = {
        "type": "query",
        "namespace": "default",
        "workflow_id": "c-1",
        "run_id": "run-c-1",
        "workflow_type": "Counter",
        "task_queue": "q",
        "query_name": "times",
        "query_args": [10],
        "history": [
            event(1, "WorkflowExecutionStarted", input=[], workflow_task_timeout="10s"),
            event(2, "WorkflowTaskScheduled"),
            event(3, "WorkflowTaskStarted", scheduled_event_id=2),
            event(4, "WorkflowTaskCompleted", scheduled_event_id=2, started_event_id=3),
            event(5, "WorkflowExecutionSignaled", signal_name="add", input=[4]),
            event(6, "WorkflowTaskScheduled"),
        ],
        "history_length": 6,
    }
    assert handle_query(_Definition.of(Counter), push) == {"result": 40}
    del push["query_args"]
    push["query_name"] = "missing"
    # Counter has a dynamic handler: it takes every other name.
    assert handle_query(_Definition.of(Counter), push) == {"result": "missing:0"}
