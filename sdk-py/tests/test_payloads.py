"""Payloads by reference (docs/protocol.md §9.1) against a stand-in for the
server's routes on loopback: the signed payload and page routes the App
uses (every request's signature checked with the push secret) and the
API-key routes the client's history fetch uses."""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from baton import App, Client, activity, workflow
from baton._inline import PushTiming, _attempt_request
from baton._payloads import (
    READ_POSITIONS,
    PayloadUnavailable,
    Resolver,
    digest,
    put_in_place,
    read_digests,
)
from baton._signing import parse_secret, sign, verify
from baton.testing import Replayer
from tests.fakeserver import FakeServer

SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
KEYS = [parse_secret(SECRET)]
BIG = "x" * 5000
LOUD = BIG.upper() + "!"
NOTE = "n" * 3000


def ref(value: Any) -> tuple[str, dict[str, Any]]:
    """The digest and reference of ``value``, as the server makes them."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    sha = hashlib.sha256(raw).hexdigest()
    return sha, {"$baton_payload": {"sha256": sha, "size_bytes": len(raw)}}


class Routes:
    """The server's routes on loopback. ``stored``: the run's payloads by
    digest; the payload route answers at most ``cap`` a request (as the
    real one stops at 8 MiB). ``history`` (with ``page_payloads`` inlined in
    every page) answers the page route and ``GET …/history``."""

    def __init__(self) -> None:
        self.stored: dict[str, Any] = {}
        self.cap: int | None = None
        self.history: list[dict[str, Any]] = []
        self.page_payloads: dict[str, Any] = {}
        #: (method, path, body) of every request.
        self.requests: list[tuple[str, str, Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["content-length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    verify(KEYS, headers, raw)
                except Exception as err:
                    return self._answer(401, {"code": "signature_invalid", "detail": str(err)})
                body = json.loads(raw)
                outer.requests.append(("POST", self.path, body))
                if self.path == "/api/v1/namespaces/default/payloads":
                    return self._answer(*outer.payloads(body))
                if self.path == "/api/v1/namespaces/default/workflow-tasks/history":
                    return self._answer(200, outer.page(body))
                return self._answer(404, {"code": "not_found"})

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                outer.requests.append(("GET", path, None))
                parts = path.split("/")
                if path.endswith("/history"):
                    return self._answer(200, {"run_id": "run-1", "events": outer.history})
                if parts[-2] == "payloads" and parts[-1] in outer.stored:
                    value = outer.stored[parts[-1]]
                    return self._answer(200, {"sha256": parts[-1], "size_bytes": 1, "value": value})
                return self._answer(404, {"code": "not_found"})

            def _answer(self, status: int, value: Any) -> None:
                data = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def history_url(self) -> str:
        return self.url + "/api/v1/namespaces/default/workflow-tasks/history"

    def payloads(self, body: dict[str, Any]) -> tuple[int, Any]:
        digests = body["sha256"]
        if len(digests) > 100 or body.get("run_id") != "run-1":
            return 400, {"code": "invalid_argument"}
        if any(d not in self.stored for d in digests):
            return 404, {"code": "not_found"}
        sent = digests if self.cap is None else digests[: self.cap]
        return 200, {"payloads": {d: self.stored[d] for d in sent}}

    def page(self, body: dict[str, Any]) -> dict[str, Any]:
        first = body["first_event_id"]
        end = int(body["history_reference"])
        return {
            "events": self.history[first - 1 : end - 1],
            "next_first_event_id": end,
            "payloads": self.page_payloads,
        }

    def payload_requests(self) -> list[list[str]]:
        return [b["sha256"] for m, p, b in self.requests if p.endswith("/payloads") and m == "POST"]


@pytest.fixture
def routes() -> Iterator[Routes]:
    r = Routes()
    yield r
    r.server.shutdown()
    r.server.server_close()


def timing() -> PushTiming:
    return PushTiming(
        received=time.monotonic(), signed_at=None, platform_deadline=None, serverless=False
    )


def signed(body: bytes) -> dict[str, str]:
    ts = int(time.time())
    return {
        "webhook-id": "msg_test",
        "webhook-timestamp": str(ts),
        "webhook-signature": sign([SECRET], "msg_test", ts, body),
        "content-type": "application/json",
    }


# --- a workflow that reads every kind of payload a replay reads ------------------------------


@activity.defn
async def shout(text: str) -> str:
    return text.upper()


@activity.defn
async def resume_from(text: str) -> list[Any]:
    return [len(text), list(activity.info().heartbeat_details)]


@workflow.defn
class Relay:
    def __init__(self) -> None:
        self.note: str | None = None

    @workflow.signal
    def hint(self, text: str) -> None:
        self.note = text

    @workflow.run
    async def run(self, text: str) -> list[Any]:
        loud = await workflow.execute_activity(
            shout, text + "!", start_to_close_timeout=timedelta(seconds=10), inline=False
        )
        await workflow.wait_condition(lambda: self.note is not None)
        return [len(text), loud[:3], len(loud), self.note]


def relay_run() -> FakeServer:
    """A run of Relay up to the task that takes the signal (not answered
    yet: its WorkflowTaskStarted is the history's last event)."""
    server = FakeServer(Relay, [BIG])
    server.workflow_task()
    server.complete_activity("1", LOUD)
    server.workflow_task()
    server.signal("hint", NOTE)
    server.add("WorkflowTaskStarted", scheduled_event_id=server.wt_scheduled)
    return server


def by_reference(events: list[dict[str, Any]], stored: dict[str, Any]) -> list[dict[str, Any]]:
    """``events`` as a server with a small ``--payload-reference-bytes``
    keeps them: every payload over 1 KiB a reference, those replay reads in
    ``stored`` (the others are not: nothing may fetch them)."""
    out = copy.deepcopy(events)
    for e in out:
        a = e["attributes"]
        for member in ("input", "result"):
            if member in a and len(json.dumps(a[member])) > 1024:
                sha, reference = ref(a[member])
                if READ_POSITIONS.get(e["event_type"]) == member:
                    stored[sha] = a[member]
                a[member] = reference
    return out


COMMANDS = [
    {
        "command_type": "CompleteWorkflowExecution",
        "attributes": {"result": [len(BIG), "XXX", len(LOUD), NOTE]},
    }
]


# --- the module -------------------------------------------------------------------------------


def test_a_reference_is_an_object_whose_only_member_is_baton_payload() -> None:
    sha, reference = ref({"a": 1})
    assert digest(reference) == sha
    assert digest({**reference, "other": 1}) is None
    assert digest({"sha256": sha}) is None
    assert digest([reference]) is None
    assert digest(None) is None
    assert digest("$baton_payload") is None
    for bad in ({"sha256": sha.upper()}, {"sha256": "abc"}, "x", None):
        with pytest.raises(PayloadUnavailable):
            digest({"$baton_payload": bad})


def test_only_the_positions_replay_reads_are_put_in_place() -> None:
    values = {f"{i}" * 64: f"value {i}" for i in range(1, 8)}
    refs = {v: {"$baton_payload": {"sha256": d, "size_bytes": 9}} for d, v in values.items()}
    positions = [
        ("WorkflowExecutionStarted", "input"),
        ("ActivityTaskCompleted", "result"),
        ("WorkflowExecutionSignaled", "input"),
        ("WorkflowExecutionUpdateAdmitted", "input"),
        ("MarkerRecorded", "details"),
        ("ChildWorkflowExecutionCompleted", "result"),
    ]
    events: list[Any] = [
        {
            "event_id": i + 1,
            "event_time": "",
            "event_type": t,
            "attributes": {m: refs[f"value {i + 1}"]},
        }
        for i, (t, m) in enumerate(positions)
    ]
    unread = [
        ("ActivityTaskScheduled", "input"),
        ("WorkflowExecutionCompleted", "result"),
        ("StartChildWorkflowExecutionInitiated", "input"),
        ("SignalExternalWorkflowExecutionInitiated", "input"),
        ("ActivityTaskCompleted", "details"),
    ]
    events += [
        {"event_id": 10 + i, "event_time": "", "event_type": t, "attributes": {m: refs["value 7"]}}
        for i, (t, m) in enumerate(unread)
    ]
    # The same payload twice is asked for once.
    events.append(dict(events[0], event_id=20))
    assert read_digests(events) == list(values)[:6]
    out = put_in_place(events, values)
    assert [e["attributes"][m] for e, (_, m) in zip(out[:6], positions, strict=True)] == [
        f"value {i}" for i in range(1, 7)
    ]
    assert out[6:-1] == events[6:-1] and all(
        a is b for a, b in zip(out[6:-1], events[6:-1], strict=True)
    )
    assert events[0]["attributes"]["input"] == refs["value 1"]  # not changed in place
    with pytest.raises(PayloadUnavailable, match="no payload"):
        put_in_place(events, {})


async def test_missing_payloads_are_fetched_in_batches_of_100_signed(routes: Routes) -> None:
    routes.stored = {hashlib.sha256(str(i).encode()).hexdigest(): i for i in range(250)}
    events: list[Any] = [
        {
            "event_id": i + 1,
            "event_time": "",
            "event_type": "ActivityTaskCompleted",
            "attributes": {"result": {"$baton_payload": {"sha256": d, "size_bytes": 1}}},
        }
        for i, d in enumerate(routes.stored)
    ]
    resolver = Resolver(KEYS, None, None)
    push = {"namespace": "default", "run_id": "run-1", "history_url": routes.history_url}
    out = await resolver.for_push(push, timing(), until=time.monotonic() + 10).events(events)
    assert [e["attributes"]["result"] for e in out] == list(range(250))
    assert [len(b) for b in routes.payload_requests()] == [100, 100, 50]
    assert resolver.fetched == 250


async def test_an_answer_that_leaves_some_out_is_asked_again_for_the_rest(routes: Routes) -> None:
    values = [f"payload {i}" for i in range(5)]
    for v in values:
        routes.stored[ref(v)[0]] = v
    routes.cap = 2
    inlined = {ref(values[1])[0]: values[1]}
    push = {
        "namespace": "default",
        "run_id": "run-1",
        "checkpoint_url": routes.url + "/api/v1/namespaces/default/workflow-tasks/checkpoint",
        "payloads": inlined,
    }
    events: list[Any] = [
        {
            "event_id": 1,
            "event_time": "",
            "event_type": "WorkflowExecutionSignaled",
            "attributes": {"input": ref(v)[1]},
        }
        for v in values
    ]
    payloads = Resolver(KEYS, None, None).for_push(push, timing(), until=time.monotonic() + 10)
    out = await payloads.events(events)
    assert [e["attributes"]["input"] for e in out] == values
    digests = [ref(v)[0] for v in values]
    # The inlined one is not asked for; two an answer, the rest asked again.
    assert routes.payload_requests() == [[digests[0], *digests[2:]], digests[3:]]
    # Known now: nothing is fetched again.
    await payloads.events(events)
    assert len(routes.payload_requests()) == 2


async def test_an_unknown_digest_or_an_empty_answer_is_unavailable(routes: Routes) -> None:
    push = {"namespace": "default", "run_id": "run-1", "history_url": routes.history_url}
    sha, reference = ref("never stored")
    events: list[Any] = [
        {
            "event_id": 1,
            "event_time": "",
            "event_type": "WorkflowExecutionStarted",
            "attributes": {"input": reference},
        }
    ]
    payloads = Resolver(KEYS, None, None).for_push(push, timing(), until=time.monotonic() + 10)
    with pytest.raises(PayloadUnavailable, match="404"):
        await payloads.events(events)
    routes.stored[sha] = "stored"
    routes.cap = 0  # an answer with none of them
    with pytest.raises(PayloadUnavailable, match="none of the 1"):
        await payloads.events(events)
    # A push that names no route, to an app without one.
    lost = Resolver(KEYS, None, None).for_push(
        {"namespace": "default", "run_id": "run-1"}, timing(), until=time.monotonic() + 10
    )
    with pytest.raises(PayloadUnavailable, match="no payload route"):
        await lost.events(events)


# --- the App ---------------------------------------------------------------------------------


async def test_a_workflow_task_replays_with_its_references_put_in_place(routes: Routes) -> None:
    server = relay_run()
    push = server.request(by_reference(server.history, routes.stored))
    started_sha = ref([BIG])[0]
    push["payloads"] = {started_sha: routes.stored[started_sha]}
    push["history_url"] = routes.history_url
    app = App(workflows=[Relay], activities=[shout], signing_secret=SECRET)
    body = json.dumps(push).encode()
    answer = json.loads((await app.handle("POST", signed(body), body)).body)
    assert answer["commands"] == COMMANDS
    # The result and the signal, in one request; the start's input was inlined.
    assert routes.payload_requests() == [[ref(LOUD)[0], ref([NOTE])[0]]]
    assert app.workflow_cache_stats.payloads_fetched == 2
    assert app.describe()["features"] == ["history_pages", "payload_references"]


async def test_a_sticky_push_puts_the_references_of_its_new_events_in_place(
    routes: Routes,
) -> None:
    server = relay_run()
    history = by_reference(server.history, routes.stored)
    app = App(workflows=[Relay], activities=[shout], signing_secret=SECRET)
    # The task that waits for the signal, whole and with every payload
    # inlined; answered sticky.
    before = server.requests[1]
    first = server.request(history[: len(before["history"])])
    first["payloads"] = dict(routes.stored)
    first["history_url"] = routes.history_url
    body = json.dumps(first).encode()
    answer = json.loads((await app.handle("POST", signed(body), body)).body)
    assert answer == {"commands": [], "sticky": True}
    # The next task: only the events after its WorkflowTaskStarted.
    after = len(before["history"])
    sticky = server.request(history[after:])
    sticky.update(
        history_first_event_id=after + 1, history_reference="1", history_url=routes.history_url
    )
    body = json.dumps(sticky).encode()
    answer = json.loads((await app.handle("POST", signed(body), body)).body)
    assert answer["commands"] == COMMANDS
    stats = app.workflow_cache_stats
    assert (stats.hits, stats.history_pages, stats.payloads_fetched) == (1, 0, 1)
    assert routes.payload_requests() == [[ref([NOTE])[0]]]


async def test_a_paged_push_uses_the_payloads_its_pages_inline(routes: Routes) -> None:
    server = relay_run()
    history = by_reference(server.history, routes.stored)
    routes.history = history
    # Pages inline the start's input; the push inlines nothing.
    routes.page_payloads = {ref([BIG])[0]: [BIG]}
    push = server.request(history[-3:])
    first = history[-3]["event_id"]
    push.update(history_first_event_id=first, history_reference=str(first))
    push["history_url"] = routes.history_url
    app = App(workflows=[Relay], activities=[shout], signing_secret=SECRET, max_cached_workflows=0)
    body = json.dumps(push).encode()
    answer = json.loads((await app.handle("POST", signed(body), body)).body)
    assert answer["commands"] == COMMANDS
    # The page, then the two payloads no page or push inlined, together.
    assert [p.rsplit("/", 1)[-1] for _, p, _ in routes.requests] == ["history", "payloads"]
    assert routes.payload_requests() == [[ref(LOUD)[0], ref([NOTE])[0]]]


async def test_a_payload_not_to_be_had_fails_the_task_and_answers_a_query_503(
    routes: Routes,
) -> None:
    server = relay_run()
    history = by_reference(server.history, routes.stored)
    routes.stored.clear()
    push = server.request(history)
    push["history_url"] = routes.history_url
    app = App(workflows=[Relay], activities=[shout], signing_secret=SECRET)
    body = json.dumps(push).encode()
    answer = json.loads((await app.handle("POST", signed(body), body)).body)
    assert answer["failure"]["cause"] == "WORKFLOW_WORKER_UNHANDLED_FAILURE"
    assert "404" in answer["failure"]["failure"]["message"]
    query = {**push, "type": "query", "query_name": "__stack_trace", "query_args": []}
    body = json.dumps(query).encode()
    assert (await app.handle("POST", signed(body), body)).status == 503


def activity_push(**extra: Any) -> dict[str, Any]:
    return {
        "type": "activity_task",
        "namespace": "default",
        "task_token": "tok-1",
        "workflow_id": "wf-1",
        "run_id": "run-1",
        "workflow_type": "Relay",
        "activity_id": "1",
        "activity_type": "resume_from",
        "task_queue": "q",
        "attempt": 2,
        "idempotency_key": "run-1/1",
        "scheduled_time": "2024-01-01T00:00:00.000Z",
        "started_time": "2024-01-01T00:00:01.000Z",
        "deadline": "2024-01-01T00:00:11.000Z",
        **extra,
    }


async def test_an_activity_gets_its_input_and_heartbeat_details_in_place(routes: Routes) -> None:
    details = [{"done": 7, "pad": "p" * 2000}]
    routes.stored = {ref([BIG])[0]: [BIG], ref(details)[0]: details}
    push = activity_push(input=ref([BIG])[1], heartbeat_details=ref(details)[1])
    # An activity push names no route: the app's server_url has it.
    app = App(activities=[resume_from], signing_secret=SECRET, server_url=routes.url)
    body = json.dumps(push).encode()
    resp = await app.handle("POST", signed(body), body)
    assert (resp.status, json.loads(resp.body)) == (200, {"result": [len(BIG), details]})
    assert routes.payload_requests() == [[ref([BIG])[0], ref(details)[0]]]
    # Inlined in the push: nothing fetched.
    inlined = {**push, "payloads": dict(routes.stored)}
    body = json.dumps(inlined).encode()
    resp = await app.handle("POST", signed(body), body)
    assert json.loads(resp.body) == {"result": [len(BIG), details]}
    assert len(routes.payload_requests()) == 1
    # No route known: not delivered (503), the server pushes it again.
    lost = App(activities=[resume_from], signing_secret=SECRET)
    body = json.dumps(push).encode()
    assert (await lost.handle("POST", signed(body), body)).status == 503


# --- the client ------------------------------------------------------------------------------


async def test_the_clients_history_is_replayable_and_leaves_unread_references(
    routes: Routes,
) -> None:
    server = relay_run()
    server.history.pop()
    server.workflow_task()  # the run completes
    raw = by_reference(server.history, routes.stored)
    routes.history = raw
    client = Client(routes.url)
    history = await client.get_workflow_handle("wf-1", run_id="run-1").fetch_history()
    unread = ("ActivityTaskScheduled", "WorkflowExecutionCompleted")
    for got, stored, original in zip(history.events, raw, server.history, strict=True):
        # Not read by replay: left as stored, references and all.
        assert got == (stored if got["event_type"] in unread else original)
    assert [e["attributes"]["input"] for e in history.events[4:5]] == [ref([BIG + "!"])[1]]
    fetched = sorted(p.rsplit("/", 1)[-1] for m, p, _ in routes.requests if m == "GET")
    assert fetched == sorted(["history", *routes.stored])
    replayer = Replayer(workflows=[Relay])
    assert (await replayer.replay_workflow(history)).replay_failure is None
    with pytest.raises(ValueError, match="payload references"):
        await replayer.replay_workflow({"events": raw})


def test_an_inline_attempt_takes_a_referenced_input_from_its_command() -> None:
    """A checkpoint's ActivityTaskScheduled holds the reference of the input
    the session itself sent: the attempt runs with the command's."""
    server = FakeServer(Relay, [BIG])
    req: Any = server.request(server.history)
    command = {
        "command_type": "ScheduleActivityTask",
        "attributes": {"activity_id": "1", "activity_type": "shout", "input": [BIG + "!"]},
    }
    scheduled = {
        "event_id": 5,
        "event_time": "2024-01-01T00:00:01.000Z",
        "event_type": "ActivityTaskScheduled",
        "attributes": {
            "activity_id": "1",
            "activity_type": "shout",
            "input": ref([BIG + "!"])[1],
            "start_to_close_timeout": "10s",
        },
    }
    task = {"activity_id": "1", "task_token": "tok", "attempt": 1}
    attempt = _attempt_request(req, task, [scheduled], [command])  # type: ignore[list-item]
    assert attempt is not None and attempt["input"] == [BIG + "!"]
    assert _attempt_request(req, task, [scheduled], []) is None  # type: ignore[list-item]
