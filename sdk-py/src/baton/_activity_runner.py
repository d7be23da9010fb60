"""Runs one activity attempt for a push and builds the answer:
``{"result": ...}``, ``{"failure": {...}}``, ``{"canceled": {...}}`` or
HTTP 202 (completed later over REST)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from baton import _http
from baton._protocol import ActivityTaskRequest, parse_duration, parse_timestamp
from baton.activity import Info, _CompleteAsyncError, _Context, _current, _Definition
from baton.converter import decode_args, error_to_failure, split_input, to_json

log = logging.getLogger("baton.activity")

DEFAULT_HEARTBEAT_THROTTLE = 30.0
MAX_HEARTBEAT_THROTTLE = 60.0


@dataclass
class ServerAccess:
    """Where heartbeats go: the server's REST API."""

    url: str | None
    api_key: str | None


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]


class _Heartbeater:
    """Sends the latest heartbeat details at most once per throttle interval
    (0.8 × heartbeat timeout, capped at 60 s; 30 s without a timeout), on the
    loop that handles the push. Thread-safe entry point: :meth:`record`."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        ctx: _Context,
        server: ServerAccess,
        namespace: str,
        task_token: str,
        heartbeat_timeout: timedelta | None,
    ) -> None:
        self._loop = loop
        self._ctx = ctx
        self._server = server
        self._namespace = namespace
        self._token = task_token
        throttle = DEFAULT_HEARTBEAT_THROTTLE
        if heartbeat_timeout is not None:
            throttle = min(heartbeat_timeout.total_seconds() * 0.8, MAX_HEARTBEAT_THROTTLE)
        self._throttle = throttle
        self._last_sent = float("-inf")
        self._pending: Sequence[Any] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sending = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._warned = False
        self._recorded = False

    def record(self, details: Sequence[Any]) -> None:
        if self._server.url is None:
            if not self._warned:
                self._warned = True
                log.warning(
                    "activity.heartbeat() called but the app has no server_url; "
                    "details are kept locally only"
                )
            return
        self._recorded = True
        self._loop.call_soon_threadsafe(self._record, tuple(details))

    def _record(self, details: Sequence[Any]) -> None:
        self._pending = details
        if self._sending or self._timer is not None:
            return
        wait = self._last_sent + self._throttle - time.monotonic()
        if wait <= 0:
            self._send_now()
        else:
            self._timer = self._loop.call_later(wait, self._fire)

    def _fire(self) -> None:
        self._timer = None
        if self._pending is not None and not self._sending:
            self._send_now()

    def _send_now(self) -> None:
        details, self._pending = self._pending, None
        self._sending = True
        self._last_sent = time.monotonic()
        task = self._loop.create_task(self._send(details or ()))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, details: Sequence[Any]) -> None:
        try:
            url = f"{self._server.url}/api/v1/namespaces/{self._namespace}/activities/heartbeat"
            headers = (
                {"Authorization": f"Bearer {self._server.api_key}"} if self._server.api_key else {}
            )
            body = {"task_token": self._token, "details": [to_json(d) for d in details]}
            resp = await _http.request("POST", url, body=body, headers=headers, timeout=10.0)
            if resp.status == 200:
                if resp.json_object().get("cancel_requested"):
                    self._ctx.request_cancel("activity cancellation requested")
            elif resp.status in (404, 409):
                # The run closed or this attempt is no longer current (it
                # timed out): stop working on it.
                self._ctx.request_cancel(f"heartbeat refused ({resp.status}): {resp.body[:200]!r}")
            else:
                log.warning("heartbeat answered %s: %r", resp.status, resp.body[:200])
        except Exception as err:
            log.warning("heartbeat failed: %s", err)
        finally:
            self._sending = False
            if self._pending is not None and self._timer is None:
                wait = max(0.0, self._last_sent + self._throttle - time.monotonic())
                self._timer = self._loop.call_later(wait, self._fire)

    async def flush(self) -> None:
        """Sends the latest details before the attempt answers, so that the
        next attempt resumes from them even when this one fails right after
        heartbeating (Temporal records them with the attempt's outcome)."""
        if self._recorded:
            # Lets records queued from a worker thread land. Without
            # heartbeats there is nothing to wait for: a push that yields
            # here waits behind every callback the loop has queued.
            await asyncio.sleep(0)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pending is not None and self._server.url is not None:
            details, self._pending = self._pending, None
            await self._send(details)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for t in list(self._tasks):
            t.cancel()


def _uncancel(ctx: _Context) -> None:
    """Takes back the cancellation delivered to the push's task (Python
    3.11+ counts them), so that the answer is still sent."""
    if ctx.cancel_delivered:
        ctx.cancel_delivered = False
        current = asyncio.current_task()
        uncancel = getattr(current, "uncancel", None)
        if uncancel is not None:
            uncancel()


def _info(req: ActivityTaskRequest) -> Info:
    hb_timeout = req.get("heartbeat_timeout")
    details = req.get("heartbeat_details")
    return Info(
        activity_id=req["activity_id"],
        activity_type=req["activity_type"],
        attempt=int(req["attempt"]),
        namespace=req["namespace"],
        workflow_id=req["workflow_id"],
        workflow_run_id=req["run_id"],
        workflow_type=req["workflow_type"],
        task_queue=req["task_queue"],
        task_token=req["task_token"],
        idempotency_key=req["idempotency_key"],
        scheduled_time=parse_timestamp(req["scheduled_time"]),
        started_time=parse_timestamp(req["started_time"]),
        deadline=parse_timestamp(req["deadline"]),
        heartbeat_timeout=parse_duration(hb_timeout) if hb_timeout else None,
        heartbeat_details=tuple(split_input(details)),
    )


async def run_activity(
    definitions: Mapping[str, _Definition],
    req: ActivityTaskRequest,
    *,
    server: ServerAccess,
    executor: concurrent.futures.Executor | None,
) -> Outcome:
    defn = definitions.get(req["activity_type"])
    if defn is None:
        # Retryable: deploying the activity fixes it.
        return Outcome(
            200,
            {
                "failure": {
                    "message": f"activity type {req['activity_type']!r} is not registered with this app "
                    f"(registered: {sorted(definitions)})",
                    "type": "NotFoundError",
                }
            },
        )
    try:
        info = _info(req)
        args = decode_args(req.get("input"), defn.arg_types)
    except (TypeError, ValueError, KeyError) as err:
        return Outcome(200, {"failure": error_to_failure(err)})
    loop = asyncio.get_running_loop()
    heartbeater: _Heartbeater | None = None

    def record(details: Sequence[Any]) -> None:
        if heartbeater is not None:
            heartbeater.record(details)

    ctx = _Context(info, record)
    ctx.loop = loop
    ctx.is_async = defn.is_async
    heartbeater = _Heartbeater(
        loop, ctx, server, info.namespace, info.task_token, info.heartbeat_timeout
    )
    token = _current.set(ctx)
    try:
        if defn.is_async:
            # Awaited in the push's own task: a task of its own would cost
            # two trips through the loop's ready queue per push (start and
            # wake-up), each behind everything else queued.
            ctx.task = asyncio.current_task()
            try:
                result = await defn.fn(*args)
            finally:
                ctx.task = None
                _uncancel(ctx)
        else:
            cv = contextvars.copy_context()
            result = await loop.run_in_executor(executor, lambda: cv.run(defn.fn, *args))
        return Outcome(200, {"result": to_json(result)})
    except _CompleteAsyncError:
        return Outcome(202, {})
    except asyncio.CancelledError as err:
        if not ctx.cancelled.is_set():
            current = asyncio.current_task()
            cancelling = getattr(current, "cancelling", None)
            if cancelling is not None and cancelling():
                raise  # the request itself is being cancelled
            return Outcome(200, {"failure": error_to_failure(err)})
        return Outcome(200, {"canceled": {"details": [to_json(d) for d in ctx.last_details]}})
    except Exception as err:
        log.info(
            "activity %s (attempt %d) failed: %r",
            req["activity_type"],
            req["attempt"],
            err,
        )
        return Outcome(200, {"failure": error_to_failure(err)})
    finally:
        _current.reset(token)
        await heartbeater.flush()
        heartbeater.close()
