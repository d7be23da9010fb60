"""Inline activities: a workflow task that runs its own activities
(docs/protocol.md §5.9).

When a workflow task's answer schedules activities this app registers
(no other task queue, not opted out with ``inline=False``) and the push
carries ``checkpoint_url``, :class:`Session` sends the answer as a
*checkpoint* naming those activities ``inline``; the server records them as
scheduled and started, and hands back their attempt tokens. The attempts
run here, at most ``max_inline_attempts`` at once in the app. As results
arrive they are fed to the same :class:`WorkflowInstance` (no replay), the
workflow runs on at ``workflow_time`` and the next checkpoint carries the
results and the new commands, one checkpoint in flight at a time. The push
is then answered ``{"checkpointed": true}``. Checkpoints go over
connections the app keeps open to the server (:class:`baton._http.Pool`).

The session stops continuing when the server answers ``continued: false``
(a signal came in, a result was refused…), when an attempt fails or is
cancelled (the server's retry policy decides what happens next), when the
workflow needs a local activity, or when the workflow code fails; it stops
starting attempts when less than max(1 s, 20 % of the push's budget) is
left before the push's ``deadline`` (or the platform's own, e.g. Lambda's).
Attempts still running then are reported with completions-only
checkpoints: from the background in a long-lived process, abandoned (and
retried by the server after their start-to-close timeout) in a serverless
one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from baton import _http, _signing
from baton._activity_runner import Outcome, ServerAccess, run_activity
from baton._payloads import Payloads, PayloadUnavailable, digest
from baton._protocol import (
    ActivityTaskRequest,
    CommandDict,
    EventDict,
    WorkflowTaskRequest,
    format_timestamp,
    parse_duration,
    parse_timestamp,
)
from baton._workflow_instance import NonDeterminismError, WorkflowInstance, WorkflowTaskFailure
from baton.activity import _Definition as _ActivityDefinition

log = logging.getLogger("baton.workflow")

# As many as an endpoint takes pushes at once by default (its
# ``max_concurrency``, 100): an attempt past the bound is pushed, to run in
# this same app after two more round trips, so a lower bound mostly adds
# pushes.
DEFAULT_MAX_INLINE_ATTEMPTS = 100
# Stop starting inline attempts this long before the push's deadline:
# max(_MIN_MARGIN, _MARGIN_FRACTION x the push's budget).
_MIN_MARGIN = 1.0
_MARGIN_FRACTION = 0.2
_CHECKPOINT_TIMEOUT = 10.0
_CHECKPOINT_TRIES = 3
CHECKPOINTED: dict[str, Any] = {"checkpointed": True}

# Attempts reported from the background after their session ended.
_background: set[asyncio.Task[None]] = set()

OnPool = Callable[..., Awaitable[Any]]


class Slots:
    """How many more inline attempts the app may run now (all sessions)."""

    def __init__(self, limit: int) -> None:
        self.free = limit

    def take(self, wanted: int) -> int:
        n = max(0, min(wanted, self.free))
        self.free -= n
        return n

    def give(self, n: int = 1) -> None:
        self.free += n


@dataclass
class InlineConfig:
    """What the app lends its sessions."""

    activities: Mapping[str, _ActivityDefinition]
    keys: Sequence[bytes]
    server: ServerAccess
    executor: concurrent.futures.Executor | None
    base_url: str | None
    slots: Slots
    identity: str
    # Kept-alive connections to the server, shared by the app's sessions.
    http: _http.Pool = field(default_factory=_http.Pool)


@dataclass
class PushTiming:
    """When the push arrived (monotonic), the timestamp the server signed it
    with, and the platform's own deadline (monotonic), if any."""

    received: float
    signed_at: int | None
    platform_deadline: float | None
    serverless: bool

    def server_clock(self) -> int:
        """The server's clock now (Unix seconds), from the push's signature
        timestamp and the time elapsed since it arrived: what the app signs
        its own requests with, so that a skewed local clock does not make
        them stale."""
        if self.signed_at is None:
            return int(time.time())
        return self.signed_at + int(time.monotonic() - self.received)


@dataclass
class _Attempt:
    activity_id: str
    task_token: str
    scheduled_event_id: int
    task: asyncio.Task[Outcome]


def checkpoint_url(req: WorkflowTaskRequest, base_url: str | None) -> str | None:
    """Where this push's checkpoints go; None when the server offers none."""
    url = req.get("checkpoint_url")
    if not url:
        return None
    if base_url:
        return (
            f"{base_url.rstrip('/')}/api/v1/namespaces/{req['namespace']}/workflow-tasks/checkpoint"
        )
    return url


def _budget(req: WorkflowTaskRequest, task_timeout: float) -> float:
    """Seconds from the push to its deadline, by the server's clock (the
    task's WorkflowTaskStarted time), so that clock skew does not count."""
    deadline = req.get("deadline")
    history = req["history"]
    if deadline and history:
        started = parse_timestamp(history[-1]["event_time"])
        return max(0.0, (parse_timestamp(deadline) - started).total_seconds())
    return task_timeout


class Session:
    """One push's inline session (see the module doc)."""

    def __init__(
        self,
        inst: WorkflowInstance,
        req: WorkflowTaskRequest,
        url: str,
        cfg: InlineConfig,
        timing: PushTiming,
        on_pool: OnPool,
        task_timeout: float,
        payloads: Payloads,
    ) -> None:
        self._inst = inst
        self._req = req
        self._url = url
        self._cfg = cfg
        self._timing = timing
        self._on_pool = on_pool
        self._payloads = payloads
        budget = _budget(req, task_timeout)
        end = timing.received + budget
        if timing.platform_deadline is not None:
            end = min(end, timing.platform_deadline)
        margin = max(_MIN_MARGIN, _MARGIN_FRACTION * budget)
        self._end = end
        self._stop_inlining_at = end - margin
        # Answer the push with half the margin still to spare.
        self._answer_by = end - margin / 2
        self._token = req["task_token"]
        # Set by every continued checkpoint's answer.
        self._server_time = datetime.fromtimestamp(0).astimezone()
        self._answered_at = 0.0
        self._running: list[_Attempt] = []
        self._continuing = True

    async def run(self, commands: list[Any]) -> dict[str, Any]:
        """The push's answer: ``{"checkpointed": true}`` once the server took
        a checkpoint, else the ordinary ``{"commands": ...}``."""
        ids = self._pick()
        if not ids:
            return {"commands": commands}
        answer = await self._post({"task_token": self._token, "commands": commands, "inline": ids})
        if answer is None:
            # Nothing is known to be applied: answer as usual (a stale
            # answer is refused by the server, never applied twice).
            self._cfg.slots.give(len(ids))
            return {"commands": commands}
        if not answer.get("continued"):
            self._cfg.slots.give(len(ids))
            return CHECKPOINTED
        try:
            await self._accept(answer, ids, commands)
            await self._loop()
        except Exception:
            # The task is completed already: the attempts still running are
            # reported as they finish, the workflow goes on in pushed tasks.
            log.exception("inline session of workflow %s failed", self._req["workflow_id"])
            self._continuing = False
            if self._running:
                self._detach()
        return CHECKPOINTED

    def _pick(self) -> list[str]:
        if self._inst.is_closed_run() or time.monotonic() >= self._stop_inlining_at:
            return []
        ids = self._inst.inline_candidates(self._req["task_queue"], self._cfg.activities)
        return ids[: self._cfg.slots.take(len(ids))]

    async def _accept(
        self, answer: dict[str, Any], ids: list[str], commands: Sequence[CommandDict]
    ) -> None:
        """Starts the attempts a continued checkpoint handed back (for the
        ``commands`` it carried) and takes its events into the instance."""
        self._token = str(answer["continuation_token"])
        self._server_time = parse_timestamp(str(answer["server_time"]))
        self._answered_at = time.monotonic()
        events = cast("list[EventDict]", answer.get("events") or [])
        tasks = cast("list[dict[str, Any]]", answer.get("activity_tasks") or [])
        started = 0
        for t in tasks:
            aid = str(t["activity_id"])
            areq = _attempt_request(self._req, t, events, commands) if aid in ids else None
            if areq is None:
                continue
            started += 1
            task = asyncio.get_running_loop().create_task(
                run_activity(
                    self._cfg.activities,
                    areq,
                    server=self._cfg.server,
                    executor=self._cfg.executor,
                ),
                name=f"inline:{areq['activity_type']}:{aid}",
            )
            sid = next(
                (
                    e["event_id"]
                    for e in events
                    if e["event_type"] == "ActivityTaskScheduled"
                    and e["attributes"].get("activity_id") == aid
                ),
                0,
            )
            self._running.append(_Attempt(aid, str(t["task_token"]), sid, task))
        self._cfg.slots.give(len(ids) - started)
        try:
            self._payloads.add(answer.get("payloads"))
            events = await self._payloads.events(events)
            await self._on_pool(self._inst.committed, events)
        except (NonDeterminismError, PayloadUnavailable) as err:
            # The server recorded something else than the commands sent (or
            # the payloads are not to be had): the next pushed task replays
            # from the history.
            log.warning("inline session of workflow %s stops: %s", self._req["workflow_id"], err)
            self._continuing = False
        if self._inst.is_closed_run():
            self._continuing = False

    async def _loop(self) -> None:
        while self._running:
            wait = self._answer_by - time.monotonic()
            if wait <= 0:
                break
            done, _ = await asyncio.wait(
                [a.task for a in self._running],
                timeout=wait,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                break
            finished = [a for a in self._running if a.task.done()]
            self._running = [a for a in self._running if not a.task.done()]
            self._cfg.slots.give(len(finished))
            completions = _completions(finished)
            if not completions:
                continue
            if self._continuing and all("result" in c for _, c in completions):
                await self._continue(completions)
            else:
                self._continuing = False
                await self._report([c for _, c in completions])
        if self._running:
            self._detach()

    async def _continue(self, completions: list[tuple[_Attempt, dict[str, Any]]]) -> None:
        """Feeds results to the instance, runs the workflow on and sends the
        checkpoint with the results and the new commands."""
        workflow_time = format_timestamp(
            self._server_time + timedelta(seconds=time.monotonic() - self._answered_at)
        )
        results: list[EventDict] = [
            {
                "event_id": 0,
                "event_time": workflow_time,
                "event_type": "ActivityTaskCompleted",
                "attributes": {"scheduled_event_id": a.scheduled_event_id, "result": c["result"]},
            }
            for a, c in completions
        ]
        wire = [c for _, c in completions]
        try:
            await self._on_pool(self._inst.resume, results, parse_timestamp(workflow_time))
            if self._inst.pending_local_activities():
                # Local activities run in a pushed task (they are not
                # checkpointed): the results go in as ordinary completions.
                raise _NotInline("the workflow waits on a local activity")
            commands = await self._on_pool(self._inst.commands)
        except (NonDeterminismError, WorkflowTaskFailure, _NotInline) as err:
            # A pushed task replays and reports what went wrong.
            log.info("inline session of workflow %s stops: %r", self._req["workflow_id"], err)
            self._continuing = False
            await self._report(wire)
            return
        ids = self._pick()
        answer = await self._post(
            {
                "task_token": self._token,
                "completions": wire,
                "commands": commands,
                "inline": ids or None,
                "workflow_time": workflow_time,
            }
        )
        if answer is not None and answer.get("continued"):
            await self._accept(answer, ids, commands)
            return
        self._cfg.slots.give(len(ids))
        self._continuing = False

    async def _report(
        self, completions: list[dict[str, Any]], *, until: float | None = None
    ) -> None:
        """A completions-only checkpoint: no continuation."""
        await self._post({"task_token": self._token, "completions": completions}, until=until)

    def _detach(self) -> None:
        """Ends the session with attempts still running (each still holds
        its slot)."""
        running, self._running = self._running, []
        if self._timing.serverless:
            # The function freezes once it answers: the server retries
            # these attempts after their start-to-close timeout.
            for a in running:
                a.task.cancel()
            self._cfg.slots.give(len(running))
            return

        async def report_later() -> None:
            left = {a.task: a for a in running}
            while left:
                done, _ = await asyncio.wait(left, return_when=asyncio.FIRST_COMPLETED)
                finished = [left.pop(t) for t in done]
                self._cfg.slots.give(len(finished))
                completions = _completions(finished)
                if completions:
                    until = time.monotonic() + _CHECKPOINT_TIMEOUT * _CHECKPOINT_TRIES
                    await self._report([c for _, c in completions], until=until)

        task = asyncio.get_running_loop().create_task(report_later())
        _background.add(task)
        task.add_done_callback(_background.discard)

    async def _post(
        self, body: dict[str, Any], *, until: float | None = None
    ) -> dict[str, Any] | None:
        """Sends one signed checkpoint; its answer, or None when it was
        refused or could not be sent (retried on 503 and transport errors
        until ``until``, by default the push's deadline)."""
        body = {k: v for k, v in body.items() if v is not None}
        body["identity"] = self._cfg.identity
        payload = json.dumps(body, separators=(",", ":")).encode()
        for attempt in range(_CHECKPOINT_TRIES):
            left = (self._end if until is None else until) - time.monotonic()
            if left <= 0:
                return None
            headers = {
                "Content-Type": "application/json",
                **_signing.signed_headers(self._cfg.keys, self._timing.server_clock(), payload),
            }
            try:
                resp = await _http.request(
                    "POST",
                    self._url,
                    body=payload,
                    headers=headers,
                    timeout=min(_CHECKPOINT_TIMEOUT, left),
                    pool=self._cfg.http,
                )
                answer = resp.json_object() if resp.status == 200 else None
            except (OSError, asyncio.TimeoutError, ValueError) as err:
                log.warning("checkpoint to %s failed: %r", self._url, err)
            else:
                if answer is not None:
                    return answer
                log.warning(
                    "checkpoint of workflow %s answered %s: %r",
                    self._req["workflow_id"],
                    resp.status,
                    resp.body[:300],
                )
                if resp.status != 503:
                    return None
            await asyncio.sleep(0.05 * 2**attempt)
        return None


class _NotInline(Exception):
    """The workflow needs something a session does not do."""


def _completions(finished: Sequence[_Attempt]) -> list[tuple[_Attempt, dict[str, Any]]]:
    """The checkpoint completions of finished attempts (an attempt that
    completes asynchronously reports over REST instead)."""
    out: list[tuple[_Attempt, dict[str, Any]]] = []
    for a in finished:
        if a.task.cancelled():
            continue
        err = a.task.exception()
        if err is not None:
            log.warning("inline attempt of activity %s crashed: %r", a.activity_id, err)
            continue
        outcome = a.task.result()
        if outcome.status != 200:
            continue
        out.append((a, {"task_token": a.task_token, **outcome.body}))
    return out


def _attempt_request(
    req: WorkflowTaskRequest,
    task: dict[str, Any],
    events: Sequence[EventDict],
    commands: Sequence[CommandDict],
) -> ActivityTaskRequest | None:
    """The activity task an inline attempt runs as, from the events the
    checkpoint appended (its ActivityTaskScheduled) and, for an input the
    server stored by reference (docs/protocol.md §9.1), the command that
    scheduled it."""
    aid = str(task["activity_id"])
    scheduled = next(
        (
            e
            for e in events
            if e["event_type"] == "ActivityTaskScheduled"
            and e["attributes"].get("activity_id") == aid
        ),
        None,
    )
    if scheduled is None:
        log.warning("checkpoint handed back activity %s without its event", aid)
        return None
    started = next(
        (
            e
            for e in events
            if e["event_type"] == "ActivityTaskStarted"
            and e["attributes"].get("scheduled_event_id") == scheduled["event_id"]
        ),
        scheduled,
    )
    a = scheduled["attributes"]
    activity_input = a.get("input")
    if digest(activity_input) is not None:
        sent = [
            c["attributes"]
            for c in commands
            if c["command_type"] == "ScheduleActivityTask" and c["attributes"]["activity_id"] == aid
        ]
        if not sent:
            log.warning("checkpoint handed back activity %s that no command scheduled", aid)
            return None
        activity_input = sent[0].get("input")
    scheduled_at = parse_timestamp(scheduled["event_time"])
    started_at = parse_timestamp(started["event_time"])
    limits: list[datetime] = []
    if a.get("start_to_close_timeout"):
        limits.append(started_at + parse_duration(str(a["start_to_close_timeout"])))
    if a.get("schedule_to_close_timeout"):
        limits.append(scheduled_at + parse_duration(str(a["schedule_to_close_timeout"])))
    deadline = min(limits) if limits else started_at + timedelta(days=3650)
    out: dict[str, Any] = {
        "type": "activity_task",
        "namespace": req["namespace"],
        "task_token": str(task["task_token"]),
        "workflow_id": req["workflow_id"],
        "run_id": req["run_id"],
        "workflow_type": req["workflow_type"],
        "activity_id": aid,
        "activity_type": str(a.get("activity_type")),
        "task_queue": req["task_queue"],
        "input": activity_input,
        "attempt": int(task.get("attempt") or 1),
        "idempotency_key": f"{req['run_id']}/{aid}",
        "scheduled_time": format_timestamp(scheduled_at),
        "started_time": format_timestamp(started_at),
        "deadline": format_timestamp(deadline),
    }
    if a.get("heartbeat_timeout"):
        out["heartbeat_timeout"] = str(a["heartbeat_timeout"])
    return cast(ActivityTaskRequest, out)
