"""The App: signature checks, push handling, and the ASGI and Lambda
adapters giving the same answers for the same requests."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from baton import App, activity
from baton._signing import sign
from baton.exceptions import ApplicationError
from tests.fakeserver import FakeServer
from tests.scenarios import (
    Onboarding,
    OrderWorkflow,
    charge_payment,
    create_account,
    provision_workspace,
    send_welcome_email,
)

SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
OTHER = "whsec_//////////////////////////////////////////8="
EVENT = json.loads(
    (Path(__file__).parent / "fixtures" / "lambda_function_url_event.json").read_text()
)


@activity.defn
async def fails_hard(n: int) -> None:
    raise ApplicationError("bad input", {"n": n}, type="BadInput", non_retryable=True)


@activity.defn
def sync_info() -> dict[str, Any]:
    i = activity.info()
    return {
        "attempt": i.attempt,
        "activity_id": i.activity_id,
        "workflow_id": i.workflow_id,
        "key": i.idempotency_key,
        "details": list(i.heartbeat_details),
        "deadline": i.deadline.isoformat(),
        "token": i.task_token,
    }


@activity.defn
async def completes_later() -> None:
    activity.raise_complete_async()


def make_app(**kw: Any) -> App:
    return App(
        workflows=[Onboarding, OrderWorkflow],
        activities=[
            create_account,
            send_welcome_email,
            provision_workspace,
            charge_payment,
            fails_hard,
            sync_info,
            completes_later,
        ],
        signing_secret=kw.pop("signing_secret", SECRET),
        **kw,
    )


def signed(body: bytes, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "webhook-id": "msg_test",
        "webhook-timestamp": str(ts),
        "webhook-signature": sign([secret], "msg_test", ts, body),
        "content-type": "application/json",
    }


def activity_push(activity_type: str, input: Any = None, **extra: Any) -> bytes:
    push = {
        "type": "activity_task",
        "namespace": "default",
        "task_token": "tok-1",
        "workflow_id": "wf-1",
        "run_id": "run-1",
        "workflow_type": "OrderWorkflow",
        "activity_id": "1",
        "activity_type": activity_type,
        "task_queue": "q",
        "input": input if input is not None else [],
        "attempt": 2,
        "idempotency_key": "run-1/1",
        "scheduled_time": "2024-01-01T00:00:00.000Z",
        "started_time": "2024-01-01T00:00:01.000Z",
        "deadline": "2024-01-01T00:00:11.000Z",
        **extra,
    }
    return json.dumps(push).encode()


def workflow_push() -> bytes:
    server = FakeServer(Onboarding, [{"id": "u1", "email": "e@x"}])
    server.add("WorkflowTaskStarted", scheduled_event_id=2)
    return json.dumps(server.request(server.history), ensure_ascii=False).encode()


# --- the two adapters --------------------------------------------------------------------


async def call_asgi(
    app: App, method: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }
    chunks = [body[: len(body) // 2], body[len(body) // 2 :]]
    received: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        received.append(message)

    await app(scope, receive, send)
    start, body_msg = received
    hdrs = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], hdrs, body_msg["body"]


def call_lambda(
    app: App, method: str, headers: dict[str, str], body: bytes, *, b64: bool
) -> tuple[int, dict[str, str], bytes]:
    event = copy.deepcopy(EVENT)
    event["requestContext"]["http"]["method"] = method
    event["headers"].update(headers)
    event["headers"]["content-length"] = str(len(body))
    event["body"] = base64.b64encode(body).decode() if b64 else body.decode("utf-8")
    event["isBase64Encoded"] = b64
    out = app.lambda_handler(event, None)
    assert out["isBase64Encoded"] is False
    return out["statusCode"], out["headers"], out["body"].encode()


Caller = Callable[[App, str, dict[str, str], bytes], Any]


async def both(app: App, method: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
    """Calls the app through ASGI and through Lambda (plain and base64
    bodies) and checks the three answers agree."""
    a_status, _, a_body = await call_asgi(app, method, headers, body)
    answers = [
        await asyncio.to_thread(call_lambda, app, method, headers, body, b64=b64)
        for b64 in (False, True)
    ]
    for status, hdrs, raw in answers:
        assert status == a_status
        assert hdrs["content-type"] == "application/json"
        assert _comparable(json.loads(raw or b"null")) == _comparable(json.loads(a_body or b"null"))
    return a_status, json.loads(a_body) if a_body else None


def _comparable(value: Any) -> Any:
    """Stack traces are diagnostics; they may differ by call path."""
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k != "stack_trace"}
    return value


# --- tests ------------------------------------------------------------------------------------------


async def test_get_describes_what_the_app_serves() -> None:
    status, body = await both(make_app(), "GET", {}, b"")
    assert status == 200
    assert [w["name"] for w in body["workflows"]] == ["Onboarding", "OrderWorkflow"]
    assert {"name": "charge_payment"} in body["activities"]
    assert {"name": "check_in"} not in body["activities"]
    assert body["sdk"]["name"] == "baton-sdk-python"
    assert body["features"] == ["history_pages", "payload_references"]


@pytest.mark.parametrize(
    ("case", "make_headers"),
    [
        ("unsigned", lambda body: {}),
        ("forged", lambda body: signed(body, secret=OTHER)),
        ("stale", lambda body: signed(body, ts=int(time.time()) - 301)),
        ("future", lambda body: signed(body, ts=int(time.time()) + 301)),
        ("altered", lambda body: signed(body.replace(b"charge", b"chargf"))),
    ],
)
async def test_bad_signatures_get_401_and_run_nothing(
    case: str, make_headers: Callable[[bytes], dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[str] = []
    monkeypatch.setattr("baton.app.run_activity", lambda *a, **k: ran.append("activity"))
    monkeypatch.setattr("baton.app.run_workflow_task", lambda *a, **k: ran.append("workflow"))
    body = activity_push("charge_payment", [{"id": "o1", "amount_cents": 5}])
    status, answer = await both(make_app(), "POST", make_headers(body), body)
    assert status == 401, case
    assert "invalid signature" in answer["error"]
    assert ran == []


async def test_rotation_accepts_either_secret() -> None:
    body = activity_push("charge_payment", [{"id": "o1", "amount_cents": 5}])
    app = make_app(signing_secret=[OTHER, SECRET])
    status, answer = await both(app, "POST", signed(body), body)
    assert (status, answer) == (200, {"result": "charge-o1-attempt-2"})


async def test_workflow_task_push_is_answered_with_commands() -> None:
    body = workflow_push()
    status, answer = await both(make_app(), "POST", signed(body), body)
    assert status == 200
    assert answer["commands"][0]["command_type"] == "ScheduleActivityTask"
    assert answer["commands"][0]["attributes"]["activity_type"] == "create_account"


async def test_activity_answers_result_failure_202_and_unknown() -> None:
    app = make_app()
    cases = {
        "result": activity_push("charge_payment", [{"id": "o1", "amount_cents": 5}]),
        "retryable": activity_push(
            "charge_payment", [{"id": "o1", "amount_cents": 5, "card": "flaky"}], attempt=1
        ),
        "non_retryable": activity_push("fails_hard", [7]),
        "async": activity_push("completes_later"),
        "unknown": activity_push("nope"),
        "bad_input": activity_push("fails_hard", ["seven"]),
    }
    out = {name: await both(app, "POST", signed(body), body) for name, body in cases.items()}
    assert out["result"] == (200, {"result": "charge-o1-attempt-2"})
    status, answer = out["retryable"]
    assert status == 200 and answer["failure"]["type"] == "ConnectionError"
    assert "non_retryable" not in answer["failure"]
    status, answer = out["non_retryable"]
    f = answer["failure"]
    assert (f["message"], f["type"], f["non_retryable"], f["details"]) == (
        "bad input",
        "BadInput",
        True,
        [{"n": 7}],
    )
    assert "stack_trace" in f
    assert out["async"] == (202, {})
    status, answer = out["unknown"]
    assert answer["failure"]["type"] == "NotFoundError"
    assert "nope" in answer["failure"]["message"]
    assert out["bad_input"][1]["failure"]["type"] == "TypeError"


async def test_sync_activities_run_in_a_thread_with_their_info() -> None:
    body = activity_push("sync_info", heartbeat_details=[{"offset": 4096}], heartbeat_timeout="2s")
    status, answer = await both(make_app(), "POST", signed(body), body)
    assert status == 200
    assert answer["result"] == {
        "attempt": 2,
        "activity_id": "1",
        "workflow_id": "wf-1",
        "key": "run-1/1",
        "details": [{"offset": 4096}],
        "deadline": "2024-01-01T00:00:11+00:00",
        "token": "tok-1",
    }


async def test_garbage_and_unknown_types_are_400_after_verification() -> None:
    app = make_app()
    body = b"not json"
    assert (await both(app, "POST", signed(body), body))[0] == 400
    body = json.dumps({"type": "update"}).encode()
    assert (await both(app, "POST", signed(body), body))[0] == 400
    body = json.dumps({"type": "query"}).encode()  # no workflow type, no history
    assert (await both(app, "POST", signed(body), body))[0] == 400
    status, _, _ = await call_asgi(app, "PUT", {}, b"")
    assert status == 405


def test_app_requires_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BATON_SIGNING_SECRET", raising=False)
    with pytest.raises(ValueError, match="signing_secret"):
        App(workflows=[Onboarding])
    monkeypatch.setenv("BATON_SIGNING_SECRET", f"{SECRET},{OTHER}")
    App(workflows=[Onboarding])


async def test_asgi_lifespan_is_acknowledged() -> None:
    app = make_app()
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(m: dict[str, Any]) -> None:
        sent.append(m["type"])

    await app({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_api_gateway_rest_v1_events_and_malformed_pushes() -> None:
    app = make_app()
    body = activity_push("charge_payment", [{"id": "o9", "amount_cents": 1}])
    event = {
        "resource": "/",
        "path": "/",
        "httpMethod": "POST",
        "headers": {k.title(): v for k, v in signed(body).items()},
        "body": body.decode(),
        "isBase64Encoded": False,
    }
    out = await asyncio.to_thread(app.lambda_handler, event, None)
    assert (out["statusCode"], json.loads(out["body"])) == (200, {"result": "charge-o9-attempt-2"})
    broken = json.dumps({"type": "workflow_task", "workflow_type": "Onboarding"}).encode()
    status, answer = await both(app, "POST", signed(broken), broken)
    assert status == 400 and "malformed workflow_task push" in answer["error"]


async def test_only_the_long_lived_app_answers_sticky_and_only_to_a_server_that_pages() -> None:
    """docs/protocol.md §5.10: the ASGI app keeps the instance and answers
    sticky when the push carries history_url; the Lambda handler keeps
    none, and a push without history_url (an older server, which would
    refuse the member) is never answered sticky."""
    app = make_app()
    push = json.loads(workflow_push())
    push["history_url"] = "http://127.0.0.1:9/api/v1/namespaces/default/workflow-tasks/history"
    body = json.dumps(push).encode()
    status, _, raw = await call_asgi(app, "POST", signed(body), body)
    assert status == 200 and json.loads(raw)["sticky"] is True
    assert app.workflow_cache_stats.cached == 1
    status, _, raw = await asyncio.to_thread(
        call_lambda, app, "POST", signed(body), body, b64=False
    )
    assert status == 200 and "sticky" not in json.loads(raw)
    older = workflow_push()
    status, _, raw = await call_asgi(app, "POST", signed(older), older)
    answer = json.loads(raw)
    assert status == 200 and "commands" in answer and "sticky" not in answer
    # That push did not follow on from the kept instance: dropped, replayed.
    stats = app.workflow_cache_stats
    assert (stats.cached, stats.hits, stats.misses) == (0, 0, 2)
