"""End to end: a real ``baton dev --time-skipping`` server on loopback
pushing to the SDK, served by uvicorn and by ``app.lambda_handler`` behind a
small Lambda function URL emulator. No mocks between the two.

Needs the server binary (``cargo build --bin baton``; see
``baton.testing.find_baton_binary``); skipped when there is none.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from baton import App, activity, workflow
from baton.client import WorkflowHandle
from baton.common import WorkflowExecutionStatus, WorkflowIDConflictPolicy
from baton.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    RPCError,
    TerminatedError,
    WorkflowAlreadyCompletedError,
    WorkflowAlreadyStartedError,
    WorkflowFailureError,
    WorkflowNotFoundError,
    WorkflowQueryFailedError,
)
from baton.testing import AppServer, Replayer, WorkflowEnvironment, find_baton_binary
from baton.workflow import ActivityCancellationType
from tests.scenarios import (
    APPROVAL_WINDOW,
    Approval,
    Decision,
    Download,
    HoldReservation,
    Onboarding,
    OnboardingReordered,
    OnboardingResult,
    Order,
    OrderWorkflow,
    Plan,
    PurchaseOrderApproval,
    TrialExpiry,
    User,
    charge_payment,
    check_in_activity,
    create_account,
    notify,
    notify_approver,
    provision_workspace,
    release_stock,
    reserve_stock,
    send_welcome_email,
    submit_order,
)

SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
HISTORIES = Path(__file__).parent / "histories"
EVENT = json.loads(
    (Path(__file__).parent / "fixtures" / "lambda_function_url_event.json").read_text()
)

try:
    BINARY: str | None = find_baton_binary()
except FileNotFoundError:
    BINARY = None

pytestmark = pytest.mark.skipif(BINARY is None, reason="no baton binary: cargo build --bin baton")


# --- activities that need the test's shared state -------------------------------------------

approval_tokens: list[str] = []
download_attempts: list[dict[str, Any]] = []


@activity.defn(name="download")
async def download(total: int) -> dict[str, int]:
    info = activity.info()
    start = int(info.heartbeat_details[0]) if info.heartbeat_details else 0
    download_attempts.append({"attempt": info.attempt, "start": start})
    if info.attempt == 1:
        # Make progress, then hang like a frozen process: heartbeats stop,
        # the heartbeat timeout fires and the server retries.
        for offset in range(start, total // 2, 10):
            activity.heartbeat(offset)
            await asyncio.sleep(0.05)
        await asyncio.sleep(4)
        return {"attempt": info.attempt, "resumed_from": -1}
    for offset in range(start, total, 10):
        activity.heartbeat(offset)
    return {"attempt": info.attempt, "resumed_from": start}


@activity.defn(name="long_job")
async def long_job(steps: int) -> str:
    for i in range(steps):
        activity.heartbeat(i)
        await asyncio.sleep(0.05)
    return "finished"


@workflow.defn
class CancelJob:
    @workflow.run
    async def run(self) -> str:
        job = workflow.start_activity(
            long_job,
            10_000,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=1),
            cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        await asyncio.sleep(0.5)
        job.cancel()
        try:
            return await job
        except ActivityError as err:
            assert isinstance(err.cause, CancelledError)
            return f"cancelled after step {err.cause.details[0]}"


@activity.defn(name="request_approval")
async def request_approval(request: str) -> str:
    approval_tokens.append(activity.info().task_token)
    activity.raise_complete_async()


@workflow.defn
class Rejecting:
    @workflow.run
    async def run(self, reason: str) -> None:
        await asyncio.sleep(0.1)
        raise ApplicationError(f"rejected: {reason}", {"reason": reason}, type="Rejected")


@workflow.defn(name="Nap")
class NapV1:
    @workflow.run
    async def run(self) -> str:
        await workflow.sleep(timedelta(hours=1))
        return "v1"


@workflow.defn(name="Nap")
class NapV2:
    @workflow.run
    async def run(self) -> str:
        await workflow.execute_activity("nap_activity", start_to_close_timeout=timedelta(seconds=5))
        return "v2"


WORKFLOWS = [
    CancelJob,
    Onboarding,
    OrderWorkflow,
    TrialExpiry,
    Download,
    Approval,
    Rejecting,
    NapV1,
    PurchaseOrderApproval,
    HoldReservation,
]
ACTIVITIES = [
    create_account,
    send_welcome_email,
    provision_workspace,
    check_in_activity,
    charge_payment,
    notify,
    download,
    request_approval,
    long_job,
    notify_approver,
    submit_order,
    reserve_stock,
    release_stock,
]


# --- the Lambda function URL emulator ----------------------------------------------------------


class LambdaURL:
    """Turns each HTTP request into a function-URL event for
    ``app.lambda_handler``. Concurrent requests run concurrently, as Lambda
    runs them in separate instances; every other body arrives base64-encoded."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.count = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                event = copy.deepcopy(EVENT)
                event["headers"] = {k.lower(): v for k, v in self.headers.items()}
                event["requestContext"]["http"]["method"] = "POST"
                with outer.lock:
                    outer.count += 1
                    b64 = outer.count % 2 == 0
                event["body"] = base64.b64encode(body).decode() if b64 else body.decode()
                event["isBase64Encoded"] = b64
                out = outer.app.lambda_handler(event, None)
                payload = out["body"].encode()
                self.send_response(out["statusCode"])
                for k, v in out["headers"].items():
                    self.send_header(k, v)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def __enter__(self) -> LambdaURL:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(env: WorkflowEnvironment) -> Iterator[dict[str, str]]:
    """Task queue -> URL: ``asgi`` served by uvicorn, ``lambda`` by the emulator."""
    app = App(
        workflows=WORKFLOWS,
        activities=ACTIVITIES,
        signing_secret=SECRET,
        server_url=env.target,
    )
    with AppServer(app) as asgi, LambdaURL(app) as lam:
        urls = {"asgi": asgi.url, "lambda": lam.url}
        for queue, url in urls.items():
            asyncio.run(env.register_endpoint(queue, url, SECRET))
        yield urls


@pytest.fixture
async def client(env: WorkflowEnvironment, servers: dict[str, str]) -> AsyncIterator[Any]:
    del servers
    yield env.client


async def wait_for_timer(
    handle: WorkflowHandle[Any], timer_id: str = "1", timeout: float = 15
) -> None:
    """Waits until the run's timer ``timer_id`` is pending (a timer that
    fired on a skip may still show as pending for a moment)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = await handle.describe()
        if any(t["timer_id"] == timer_id for t in d.pending_timers):
            return
        if d.status != WorkflowExecutionStatus.RUNNING:
            raise AssertionError(f"workflow closed early: {d.status}")
        await asyncio.sleep(0.02)
    raise AssertionError(f"no pending timer: {await handle.describe()}")


def event_types(history: Any) -> list[str]:
    return [e["event_type"] for e in history.events]


# --- scenarios --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("queue", ["asgi", "lambda"])
async def test_onboarding_with_a_seven_day_sleep(
    queue: str, client: Any, env: WorkflowEnvironment
) -> None:
    user = User(id=f"u-{queue}", email=f"{queue}@example.com", plan=Plan.PRO)
    handle = await client.start_workflow(
        Onboarding.run, user, id=f"onboard-{queue}", task_queue=queue
    )
    await wait_for_timer(handle)
    begun = time.monotonic()
    await env.sleep(timedelta(days=7))
    result = await asyncio.wait_for(handle.result(), 20)
    assert time.monotonic() - begun < 5
    assert result == OnboardingResult(
        account=f"acct-u-{queue}",
        steps=[
            f"acct-u-{queue}",
            f"welcome:{queue}@example.com",
            f"workspace:acct-u-{queue}",
            f"checked-in:acct-u-{queue}",
        ],
    )
    history = await handle.fetch_history()
    types = event_types(history)
    assert types.count("ActivityTaskScheduled") == 4
    assert types.count("TimerFired") == 1
    # Replay-safe with the same code; a reordered deploy is caught.
    await Replayer(workflows=[Onboarding]).replay_workflow(history)
    with pytest.raises(Exception, match="create_account"):
        await Replayer(workflows=[OnboardingReordered]).replay_workflow(history)
    if queue == "asgi" and (
        os.environ.get("BATON_RECORD_HISTORIES") == "1"
        or not (HISTORIES / "server_onboarding.json").exists()
    ):
        (HISTORIES / "server_onboarding.json").write_text(
            json.dumps(history.to_json_dict(), indent=1) + "\n"
        )


@pytest.mark.parametrize("queue", ["asgi", "lambda"])
async def test_payment_retries_transient_failures(queue: str, client: Any) -> None:
    result = await client.execute_workflow(
        OrderWorkflow.run,
        Order(id=f"o-{queue}", amount_cents=500, card="flaky"),
        id=f"order-flaky-{queue}",
        task_queue=queue,
    )
    assert result == f"charge-o-{queue}-attempt-3"
    history = await client.get_workflow_handle(f"order-flaky-{queue}").fetch_history()
    started = next(e for e in history.events if e["event_type"] == "ActivityTaskStarted")
    assert started["attributes"]["attempt"] == 3
    assert started["attributes"]["last_failure"]["type"] == "ConnectionError"
    assert "attempt 2" in started["attributes"]["last_failure"]["message"]


@pytest.mark.parametrize("queue", ["asgi", "lambda"])
async def test_non_retryable_payment_error_fails_the_workflow(queue: str, client: Any) -> None:
    with pytest.raises(WorkflowFailureError) as info:
        await client.execute_workflow(
            OrderWorkflow.run,
            Order(id="o2", amount_cents=500, card="declined"),
            id=f"order-declined-{queue}",
            task_queue=queue,
        )
    act = info.value.cause
    assert isinstance(act, ActivityError)
    assert act.activity_type == "charge_payment"
    assert act.retry_state == RetryState.NON_RETRYABLE_FAILURE
    app_err = act.cause
    assert isinstance(app_err, ApplicationError)
    assert (app_err.type, app_err.message, list(app_err.details)) == (
        "CardDeclined",
        "card declined",
        [{"order": "o2"}],
    )
    history = await client.get_workflow_handle(f"order-declined-{queue}").fetch_history()
    started = next(e for e in history.events if e["event_type"] == "ActivityTaskStarted")
    assert started["attributes"]["attempt"] == 1


async def test_heartbeats_let_the_next_attempt_resume(client: Any) -> None:
    download_attempts.clear()
    result = await asyncio.wait_for(
        client.execute_workflow(Download.run, 100, id="download-1", task_queue="asgi"), 30
    )
    assert result["attempt"] == 2
    assert result["resumed_from"] > 0
    assert [a["attempt"] for a in download_attempts] == [1, 2]
    assert download_attempts[1]["start"] == result["resumed_from"]
    history = await client.get_workflow_handle("download-1").fetch_history()
    started = next(e for e in history.events if e["event_type"] == "ActivityTaskStarted")
    assert started["attributes"]["last_failure"]["timeout_type"] == "HEARTBEAT"


@pytest.mark.parametrize("queue", ["asgi", "lambda"])
async def test_trial_expiry_with_consecutive_durable_timers(
    queue: str, client: Any, env: WorkflowEnvironment
) -> None:
    handle = await client.start_workflow(
        TrialExpiry.run, [86400.0, 2 * 86400.0, 0.2], id=f"trial-{queue}", task_queue=queue
    )
    # Skip by the timers' own durations: `to_next_timer` is server-wide and
    # may stop at another run's pending timeout.
    for timer_id, days in (("1", 1), ("2", 2)):
        await wait_for_timer(handle, timer_id)
        await env.sleep(timedelta(days=days))
    result = await asyncio.wait_for(handle.result(), 20)
    assert result == ["sent:reminder 1", "sent:reminder 2", "sent:reminder 3"]
    history = await handle.fetch_history()
    fired = [e for e in history.events if e["event_type"] == "TimerFired"]
    assert [f["attributes"]["timer_id"] for f in fired] == ["1", "2", "3"]


@pytest.mark.parametrize("queue", ["asgi", "lambda"])
async def test_cancelling_a_heartbeating_activity(queue: str, client: Any) -> None:
    result = await asyncio.wait_for(
        client.execute_workflow(CancelJob.run, id=f"cancel-job-{queue}", task_queue=queue), 20
    )
    assert result.startswith("cancelled after step ")
    history = await client.get_workflow_handle(f"cancel-job-{queue}").fetch_history()
    types = event_types(history)
    assert "ActivityTaskCancelRequested" in types
    assert "ActivityTaskCanceled" in types


async def test_async_completion_through_the_client(client: Any) -> None:
    approval_tokens.clear()
    handle = await client.start_workflow(
        Approval.run, "expense-42", id="approval-1", task_queue="asgi"
    )
    deadline = time.monotonic() + 10
    while not approval_tokens and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert approval_tokens, "the activity never ran"
    activity_handle = client.get_async_activity_handle(approval_tokens[0])
    assert await activity_handle.heartbeat({"waiting": "manager"}) is False
    await activity_handle.complete("approved")
    assert await handle.result() == "approved"
    with pytest.raises(RPCError) as info:
        await activity_handle.complete("again")
    assert info.value.status == 409


async def test_workflow_failure_and_client_operations(client: Any) -> None:
    with pytest.raises(WorkflowFailureError) as info:
        await client.execute_workflow(
            Rejecting.run, "over budget", id="reject-1", task_queue="asgi"
        )
    cause = info.value.cause
    assert isinstance(cause, ApplicationError)
    assert (cause.type, cause.message, list(cause.details)) == (
        "Rejected",
        "rejected: over budget",
        [{"reason": "over budget"}],
    )

    # Id policies and typed errors.
    handle = await client.start_workflow(NapV1.run, id="nap-ops", task_queue="asgi")
    with pytest.raises(WorkflowAlreadyStartedError):
        await client.start_workflow(NapV1.run, id="nap-ops", task_queue="asgi")
    same = await client.start_workflow(
        NapV1.run,
        id="nap-ops",
        task_queue="asgi",
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    assert same.first_execution_run_id == handle.first_execution_run_id
    await wait_for_timer(handle)
    d = await handle.describe()
    assert (d.status, d.workflow_type, d.pending_timers[0]["timer_id"]) == (
        WorkflowExecutionStatus.RUNNING,
        "Nap",
        "1",
    )
    listed = [
        w
        async for w in client.list_workflows("WorkflowType = 'Nap' AND ExecutionStatus = 'Running'")
    ]
    assert "nap-ops" in [w.id for w in listed]
    await handle.terminate(reason="test over")
    with pytest.raises(WorkflowFailureError) as info:
        await handle.result()
    assert isinstance(info.value.cause, TerminatedError)
    with pytest.raises(RPCError) as rpc:
        await client.get_workflow_handle("no-such-workflow").describe()
    assert rpc.value.status == 404


async def test_changed_code_fails_the_task_with_non_determinism(
    client: Any, env: WorkflowEnvironment, servers: dict[str, str]
) -> None:
    await env.register_endpoint("nde", servers["asgi"], SECRET)
    handle = await client.start_workflow(NapV1.run, id="nap-nde", task_queue="nde")
    await wait_for_timer(handle)
    # Redeploy the queue with code that dropped the timer.
    v2 = App(workflows=[NapV2], signing_secret=SECRET)
    failure = None
    with AppServer(v2) as server:
        await env.register_endpoint("nde", server.url, SECRET)
        await env.sleep(timedelta(hours=1))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and failure is None:
            history = await handle.fetch_history()
            failure = next(
                (e for e in history.events if e["event_type"] == "WorkflowTaskFailed"), None
            )
            await asyncio.sleep(0.05)
    assert failure is not None
    assert failure["attributes"]["cause"] == "NON_DETERMINISTIC_ERROR"
    assert "TimerStarted" in failure["attributes"]["failure"]["message"]
    d = await handle.describe()
    assert d.status == WorkflowExecutionStatus.RUNNING
    await handle.terminate(reason="cleanup")


# --- signals and cancellation ------------------------------------------------------------------


@pytest.mark.parametrize("queue", ["asgi", "lambda"])
async def test_purchase_order_expires_without_approval(
    queue: str, client: Any, env: WorkflowEnvironment
) -> None:
    handle = await client.start_workflow(
        PurchaseOrderApproval.run, f"po-exp-{queue}", id=f"po-expire-{queue}", task_queue=queue
    )
    await wait_for_timer(handle)
    await env.sleep(APPROVAL_WINDOW)
    assert await asyncio.wait_for(handle.result(), 20) == "expired"
    history = await handle.fetch_history()
    assert "ActivityTaskCompleted" in event_types(history)
    await Replayer(workflows=[PurchaseOrderApproval]).replay_workflow(history)


@pytest.mark.parametrize(("approved", "outcome"), [(True, "submitted"), (False, "rejected")])
async def test_purchase_order_approve_signal(approved: bool, outcome: str, client: Any) -> None:
    handle = await client.start_workflow(
        PurchaseOrderApproval.run, "po-7", id=f"po-{outcome}", task_queue="asgi"
    )
    await wait_for_timer(handle)  # notified, now waiting up to 48 hours
    await handle.signal(
        PurchaseOrderApproval.approve, Decision(approved=approved, approver="ann@example.com")
    )
    assert await asyncio.wait_for(handle.result(), 20) == outcome
    history = await handle.fetch_history()
    types = event_types(history)
    assert types.count("WorkflowExecutionSignaled") == 1
    assert "TimerCanceled" in types
    await Replayer(workflows=[PurchaseOrderApproval]).replay_workflow(history)


@pytest.mark.parametrize("queue", ["asgi", "lambda"])
async def test_purchase_order_queries(queue: str, client: Any) -> None:
    handle = await client.start_workflow(
        PurchaseOrderApproval.run, "po-q", id=f"po-query-{queue}", task_queue=queue
    )
    await wait_for_timer(handle)  # notified, now waiting for approval
    before = (await handle.fetch_history()).events
    assert await handle.query(PurchaseOrderApproval.get_status) == "awaiting approval"
    assert await handle.query("get_decision") is None
    with pytest.raises(WorkflowQueryFailedError) as failed:
        await handle.query("get_total")
    assert "get_total" in failed.value.message
    assert "get_decision get_status" in failed.value.message
    assert (await handle.fetch_history()).events == before  # queries write nothing

    decision = Decision(approved=True, approver="ann@example.com", comment="ok")
    await handle.signal(PurchaseOrderApproval.approve, decision)
    assert await handle.query(PurchaseOrderApproval.get_decision) == decision
    assert await handle.query(PurchaseOrderApproval.get_status) in ("submitting", "submitted")

    assert await asyncio.wait_for(handle.result(), 20) == "submitted"
    closed = (await handle.fetch_history()).events
    assert await handle.query(PurchaseOrderApproval.get_status) == "submitted"
    assert await handle.query(PurchaseOrderApproval.get_decision) == decision
    assert await handle.query("get_decision", result_type=dict) == {
        "approved": True,
        "approver": "ann@example.com",
        "comment": "ok",
    }
    assert (await handle.fetch_history()).events == closed
    await Replayer(workflows=[PurchaseOrderApproval]).replay_workflow(await handle.fetch_history())


async def test_query_of_an_unknown_workflow(client: Any) -> None:
    with pytest.raises(WorkflowNotFoundError):
        await client.get_workflow_handle("po-no-such-run").query("get_status")


async def test_query_without_an_endpoint_is_unavailable(client: Any) -> None:
    handle = await client.start_workflow(
        PurchaseOrderApproval.run, "po-x", id="po-query-nowhere", task_queue="nowhere"
    )
    with pytest.raises(RPCError) as err:
        await handle.query(PurchaseOrderApproval.get_status)
    assert err.value.status == 503
    assert not isinstance(err.value, WorkflowNotFoundError)
    await handle.terminate(reason="test done")


async def test_a_retried_signal_is_recorded_once(client: Any) -> None:
    handle = await client.start_workflow(
        PurchaseOrderApproval.run, "po-8", id="po-dedupe", task_queue="asgi"
    )
    await wait_for_timer(handle)
    for _ in range(2):
        await handle.signal(
            "approve", Decision(approved=True, approver="ann"), request_id="approve-po-8"
        )
    assert await asyncio.wait_for(handle.result(), 20) == "submitted"
    history = await handle.fetch_history()
    signaled = [e for e in history.events if e["event_type"] == "WorkflowExecutionSignaled"]
    assert len(signaled) == 1
    assert signaled[0]["attributes"]["request_id"] == "approve-po-8"


async def test_signal_with_start(client: Any) -> None:
    handle = await client.start_workflow(
        PurchaseOrderApproval.run,
        "po-9",
        id="po-sws",
        task_queue="asgi",
        start_signal="approve",
        start_signal_args=[Decision(approved=False, approver="bob")],
    )
    assert await asyncio.wait_for(handle.result(), 20) == "rejected"
    history = await handle.fetch_history()
    assert event_types(history)[:2] == ["WorkflowExecutionStarted", "WorkflowExecutionSignaled"]
    assert "TimerStarted" not in event_types(history)
    await Replayer(workflows=[PurchaseOrderApproval]).replay_workflow(history)


async def test_signal_with_start_signals_an_open_run(client: Any) -> None:
    first = await client.start_workflow(
        PurchaseOrderApproval.run, "po-10", id="po-sws-open", task_queue="asgi"
    )
    await wait_for_timer(first)
    again = await client.start_workflow(
        PurchaseOrderApproval.run,
        "po-10",
        id="po-sws-open",
        task_queue="asgi",
        start_signal="approve",
        start_signal_args=[Decision(approved=True, approver="cy")],
    )
    assert again.first_execution_run_id == first.first_execution_run_id
    assert await asyncio.wait_for(first.result(), 20) == "submitted"


@pytest.mark.parametrize("queue", ["asgi", "lambda"])
async def test_cancel_runs_the_compensation_and_closes_as_canceled(queue: str, client: Any) -> None:
    handle = await client.start_workflow(
        HoldReservation.run, f"o-{queue}", id=f"hold-{queue}", task_queue=queue
    )
    await wait_for_timer(handle)
    await handle.cancel(reason="customer left")
    with pytest.raises(WorkflowFailureError) as info:
        await asyncio.wait_for(handle.result(), 20)
    assert isinstance(info.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    history = await handle.fetch_history()
    types = event_types(history)
    assert types.index("WorkflowExecutionCancelRequested") < types.index("TimerCanceled")
    released = [
        e
        for e in history.events
        if e["event_type"] == "ActivityTaskScheduled"
        and e["attributes"]["activity_type"] == "release_stock"
    ]
    assert len(released) == 1
    assert types[-1] == "WorkflowExecutionCanceled"
    await Replayer(workflows=[HoldReservation]).replay_workflow(history)


async def test_signal_or_cancel_of_a_closed_or_unknown_workflow(client: Any) -> None:
    handle = await client.start_workflow(
        PurchaseOrderApproval.run,
        "po-11",
        id="po-closed",
        task_queue="asgi",
        start_signal="approve",
        start_signal_args=[Decision(approved=False, approver="dee")],
    )
    assert await asyncio.wait_for(handle.result(), 20) == "rejected"
    with pytest.raises(WorkflowAlreadyCompletedError) as done:
        await handle.signal("approve", Decision(approved=True, approver="late"))
    assert (done.value.status, done.value.workflow_id) == (409, "po-closed")
    with pytest.raises(WorkflowAlreadyCompletedError):
        await handle.cancel()
    ghost = client.get_workflow_handle("po-no-such-workflow")
    with pytest.raises(WorkflowNotFoundError) as missing:
        await ghost.signal("approve", Decision(approved=True, approver="x"))
    assert isinstance(missing.value, RPCError) and missing.value.status == 404
    with pytest.raises(WorkflowNotFoundError):
        await ghost.cancel()
