"""Workflow tasks with local activities (docs/protocol.md §5.2.1, §14.6).

:func:`run_workflow_task` answers a workflow task push. It replays the run,
paging in the older events of a partial push (:mod:`baton._pages`), or
goes on in the run's cached instance when the push is a sticky one that
follows on from it (:mod:`baton._sticky`), the payload references of the
events it applies put in place first (:mod:`baton._payloads`); the
workflow code is synchronous and runs on the serving loop, or on the
replay pool when more than ``inline_replay_max_events`` events are
replayed. While the
workflow waits on local activities it runs their attempts in this app,
retrying in-process while the back-off is at most the local retry
threshold, feeds each outcome back (a ``LocalActivity`` marker) and lets
the workflow go on. When only non-local work is left it answers with every
command; when the task's deadline nears first (80 % of its timeout, as
Temporal does) it answers with what it has and
``force_create_new_workflow_task``, and the attempts still running carry on
in this process for the next task to pick up (a workflow-task heartbeat).
When the answer schedules activities this app may run inline, an inline
session (:mod:`baton._inline`) takes over the same instance. A long-lived
app keeps the instance of an answer with commands for the run's next task
and answers ``"sticky": true``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from baton._inline import InlineConfig, PushTiming, Session, _budget, checkpoint_url
from baton._pages import HistoryUnavailable, Pager
from baton._payloads import Payloads, PayloadUnavailable, Resolver
from baton._protocol import (
    WorkflowTaskRequest,
    format_duration,
    parse_duration,
    parse_timestamp,
)
from baton._sticky import WorkflowCache
from baton._workflow_instance import (
    LocalActivity,
    NonDeterminismError,
    WorkflowInstance,
    WorkflowTaskFailure,
    _task_failure,
    log,
)
from baton.activity import Info, _Context, _current
from baton.activity import _Definition as _ActivityDefinition
from baton.converter import decode_args, error_to_failure, to_json
from baton.exceptions import ApplicationError, TimeoutError, TimeoutType
from baton.workflow import _Definition

_HEARTBEAT_FRACTION = 0.8
# How long an attempt's outcome waits for the next task of its run (a
# workflow-task heartbeat) before it is dropped.
_ORPHAN_TTL = 120.0

# Attempts running in this process, by (run id, activity id, first attempt):
# a task that answered early leaves them here for the next task of the run.
_running: dict[tuple[str, str, int], asyncio.Task[dict[str, Any]]] = {}

_log = logging.getLogger("baton.activity")


@dataclass
class WorkflowTaskConfig:
    """What the app lends every workflow task it answers."""

    activities: Mapping[str, _ActivityDefinition]
    #: Where replays of more than ``inline_replay_max_events`` events run
    #: (shorter ones run on the serving loop).
    workflow_pool: concurrent.futures.Executor
    inline_replay_max_events: int
    activity_executor: concurrent.futures.Executor | None
    determinism_checks: bool
    pager: Pager
    resolver: Resolver
    #: None: no inline activities.
    inline: InlineConfig | None
    cache: WorkflowCache


async def run_workflow_task(
    definition: _Definition | None,
    req: WorkflowTaskRequest,
    cfg: WorkflowTaskConfig,
    timing: PushTiming,
) -> dict[str, Any]:
    """The answer to one workflow task push (see the module doc): in the
    run's cached instance when the push follows on from it, else replayed
    from the first event (paged in when the push lacks older events). A
    serverless push (``timing``) uses no cache."""
    if definition is None:
        err = LookupError(f"workflow type {req['workflow_type']!r} is not registered with this app")
        return _task_failure("WORKFLOW_WORKER_UNHANDLED_FAILURE", err)
    loop = asyncio.get_running_loop()
    task_timeout = _task_timeout(req)
    heartbeat_at = loop.time() + _HEARTBEAT_FRACTION * task_timeout
    cache = None if timing.serverless else cfg.cache
    ctx = contextvars.copy_context()
    replayed = len(req["history"])

    async def on_pool(fn: Any, *args: Any) -> Any:
        if replayed <= cfg.inline_replay_max_events:
            return ctx.run(fn, *args)
        return await loop.run_in_executor(cfg.workflow_pool, lambda: ctx.run(fn, *args))

    until = timing.received + _budget(req, task_timeout)
    payloads = cfg.resolver.for_push(req, timing, until=until)
    inst = await _sticky_instance(definition, req, cache, on_pool, payloads)
    fresh = inst is None
    if inst is None:
        try:
            whole = await cfg.pager.whole(cast("dict[str, Any]", req), timing, until=until)
            whole = await payloads.workflow_push(whole)
        except HistoryUnavailable as err:
            # Older events or a referenced payload (PayloadUnavailable) not
            # had: answered as a failure of this task; the server records
            # it and pushes the task again, with a fresh reference (§7.3).
            log.warning("workflow task of %s failed: %s", req["workflow_id"], err)
            return _task_failure("WORKFLOW_WORKER_UNHANDLED_FAILURE", err)
        replayed = len(whole["history"])
        inst = WorkflowInstance(
            definition,
            cast(WorkflowTaskRequest, whole),
            determinism_checks=cfg.determinism_checks,
        )
    activities, activity_executor, inline = cfg.activities, cfg.activity_executor, cfg.inline
    started: dict[str, tuple[LocalActivity, asyncio.Task[dict[str, Any]]]] = {}
    force = False
    kept = False
    try:
        if fresh:
            await on_pool(inst.begin)
        while True:
            pending = inst.pending_local_activities()
            for aid, (la, task) in list(started.items()):
                if la not in pending or la.future.done():
                    # Cancelled by the workflow (TRY_CANCEL), or resolved.
                    del started[aid]
                    if not task.done():
                        task.cancel()
            if not pending:
                break
            for la in pending:
                if la.activity_id not in started:
                    task = _attempts(la, req, activities, activity_executor)
                    started[la.activity_id] = (la, task)
            done, _ = await asyncio.wait(
                [t for _, t in started.values()],
                timeout=max(0.0, heartbeat_at - loop.time()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            if not done:
                force = True
                break
            for aid, (la, task) in sorted(started.items()):
                if task in done:
                    del started[aid]
                    _running.pop(_key(req, la), None)
                    await on_pool(inst.resolve_local_activity, la, task.result())
        commands = await on_pool(inst.commands)
        url = checkpoint_url(req, inline.base_url) if inline is not None else None
        answer: dict[str, Any] = {"commands": commands}
        if not force and url is not None and inline is not None:
            session = Session(inst, req, url, inline, timing, on_pool, task_timeout, payloads)
            answer = await session.run(commands)
        if (
            cache is not None
            and "commands" in answer
            and not force
            and not inst.is_closed_run()
            # Older servers refuse answer members they do not know.
            and req.get("history_url")
        ):
            kept = cache.keep(req["run_id"], inst)
            if kept:
                answer["sticky"] = True
    except NonDeterminismError as err:
        return _task_failure("NON_DETERMINISTIC_ERROR", err)
    except WorkflowTaskFailure as err:
        log.warning(
            "workflow task failed: workflow %s (%s): %r",
            req["workflow_id"],
            definition.name,
            err.cause,
            exc_info=err.cause,
        )
        return _task_failure("WORKFLOW_WORKER_UNHANDLED_FAILURE", err.cause)
    finally:
        if not kept:
            await on_pool(inst.teardown)
    if force:
        answer["force_create_new_workflow_task"] = True
    return answer


async def _sticky_instance(
    definition: _Definition,
    req: WorkflowTaskRequest,
    cache: WorkflowCache | None,
    on_pool: Callable[..., Awaitable[Any]],
    payloads: Payloads,
) -> WorkflowInstance | None:
    """The run's cached instance with the push's events applied (their
    references put in place), when the push follows on from it
    (docs/protocol.md §5.10); None (the task replays) otherwise. A cached
    instance that does not fit is dropped."""
    if cache is None:
        return None
    inst = cache.take(req["run_id"])
    applied = False
    if inst is not None:
        try:
            if (
                inst.definition is definition
                and req.get("history_first_event_id") == inst.ended_at + 1
            ):
                sticky = await payloads.workflow_push(cast("dict[str, Any]", req))
                applied = await on_pool(inst.advance, cast(WorkflowTaskRequest, sticky))
        except (NonDeterminismError, WorkflowTaskFailure, PayloadUnavailable) as err:
            # The instance is not what the history says (another process
            # answered a task of the run…): the replay decides.
            log.info("cached workflow %s dropped: %r", req["workflow_id"], err)
        finally:
            if not applied:
                await on_pool(inst.teardown)
    if not applied:
        cache.misses += 1
        return None
    cache.hits += 1
    return inst


def _task_timeout(req: WorkflowTaskRequest) -> float:
    for e in reversed(req["history"]):
        if e["event_type"] == "WorkflowTaskScheduled":
            timeout = (e.get("attributes") or {}).get("start_to_close_timeout")
            if isinstance(timeout, str):
                return parse_duration(timeout).total_seconds()
            break
    return 10.0


def _key(req: WorkflowTaskRequest, la: LocalActivity) -> tuple[str, str, int]:
    return (req["run_id"], la.activity_id, la.attempt)


def _attempts(
    la: LocalActivity,
    req: WorkflowTaskRequest,
    activities: Mapping[str, _ActivityDefinition],
    executor: concurrent.futures.Executor | None,
) -> asyncio.Task[dict[str, Any]]:
    """The task running ``la``'s attempts from ``la.attempt``: the one an
    earlier task of this run left running, else a new one."""
    key = _key(req, la)
    task = _running.get(key)
    if task is not None:
        return task
    loop = asyncio.get_running_loop()
    task = loop.create_task(_run_attempts(la, req, activities, executor))
    _running[key] = task

    def forget(t: asyncio.Task[dict[str, Any]]) -> None:
        # Nobody came back for it (the next task went to another process):
        # drop it after a while.
        loop.call_later(
            _ORPHAN_TTL, lambda: _running.pop(key, None) if _running.get(key) is t else None
        )
        if not t.cancelled():
            t.exception()

    task.add_done_callback(forget)
    return task


async def _run_attempts(
    la: LocalActivity,
    req: WorkflowTaskRequest,
    activities: Mapping[str, _ActivityDefinition],
    executor: concurrent.futures.Executor | None,
) -> dict[str, Any]:
    """Runs attempts until one succeeds, the failure is final, or the next
    back-off exceeds the local retry threshold; returns the outcome as the
    marker records it."""
    scheduled = parse_timestamp(la.original_schedule_time) if la.original_schedule_time else _now()
    base = {"original_schedule_time": _timestamp(scheduled)}
    attempt = la.attempt
    while True:
        try:
            result = await _run_attempt(la, attempt, scheduled, req, activities, executor)
            return {
                **base,
                "attempt": attempt,
                "complete_time": _timestamp(_now()),
                "result": result,
            }
        except asyncio.CancelledError:
            raise
        except Exception as err:
            failure = error_to_failure(err)
            retry = _retry(la, err, attempt, scheduled)
        outcome = {
            **base,
            "attempt": attempt,
            "complete_time": _timestamp(_now()),
            "failure": failure,
        }
        if isinstance(retry, str):
            return {**outcome, "retry_state": retry}
        if retry > la.local_retry_threshold:
            return {**outcome, "backoff": format_duration(retry)}
        _log.info(
            "local activity %s (attempt %d) failed, retrying in %s: %r",
            la.activity_type,
            attempt,
            retry,
            failure.get("message"),
        )
        await asyncio.sleep(retry.total_seconds())
        attempt += 1


def _retry(la: LocalActivity, err: Exception, attempt: int, scheduled: datetime) -> timedelta | str:
    """The back-off before the next attempt, or the retry state that ends
    the activity (Temporal's retry rules, docs/protocol.md §7.1)."""
    p = la.retry_policy
    error_type = err.type if isinstance(err, ApplicationError) else type(err).__name__
    if isinstance(err, ApplicationError) and err.non_retryable:
        return "NON_RETRYABLE_FAILURE"
    if error_type in (p.non_retryable_error_types or ()):
        return "NON_RETRYABLE_FAILURE"
    if p.maximum_attempts and attempt >= p.maximum_attempts:
        return "MAXIMUM_ATTEMPTS_REACHED"
    maximum = p.maximum_interval or p.initial_interval * 100
    delay = min(p.initial_interval * (p.backoff_coefficient ** (attempt - 1)), maximum)
    if isinstance(err, ApplicationError) and err.next_retry_delay is not None:
        delay = err.next_retry_delay
    s2c = la.schedule_to_close_timeout
    if s2c is not None and _now() + delay >= scheduled + s2c:
        return "TIMEOUT"
    return delay


async def _run_attempt(
    la: LocalActivity,
    attempt: int,
    scheduled: datetime,
    req: WorkflowTaskRequest,
    activities: Mapping[str, _ActivityDefinition],
    executor: concurrent.futures.Executor | None,
) -> Any:
    defn = activities.get(la.activity_type)
    if defn is None:
        raise ApplicationError(
            f"local activity type {la.activity_type!r} is not registered with this app "
            f"(registered: {sorted(activities)}): a local activity runs in the app that "
            "runs its workflow",
            type="NotFoundError",
        )
    started = _now()
    limits = [
        d
        for d in (
            la.start_to_close_timeout,
            la.schedule_to_close_timeout and (scheduled + la.schedule_to_close_timeout - started),
        )
        if d is not None
    ]
    timeout = min(limits) if limits else None
    info = Info(
        activity_id=la.activity_id,
        activity_type=la.activity_type,
        attempt=attempt,
        namespace=req["namespace"],
        workflow_id=req["workflow_id"],
        workflow_run_id=req["run_id"],
        workflow_type=req["workflow_type"],
        task_queue=req["task_queue"],
        task_token="",
        idempotency_key=f"{req['run_id']}/{la.activity_id}",
        scheduled_time=scheduled,
        started_time=started,
        deadline=started + timeout if timeout is not None else scheduled + timedelta(days=3650),
        heartbeat_timeout=None,
        is_local=True,
    )
    args = decode_args(la.input, defn.arg_types)
    loop = asyncio.get_running_loop()
    ctx = _Context(info, lambda _details: None)
    ctx.loop = loop
    ctx.is_async = defn.is_async
    token = _current.set(ctx)
    try:
        if defn.is_async:
            run: Any = defn.fn(*args)
        else:
            cv = contextvars.copy_context()
            run = loop.run_in_executor(executor, lambda: cv.run(defn.fn, *args))
        try:
            result = await asyncio.wait_for(
                run, timeout.total_seconds() if timeout is not None else None
            )
        except asyncio.TimeoutError as err:
            ctx.request_cancel("timed out")
            raise TimeoutError("local activity timed out", type=TimeoutType.START_TO_CLOSE) from err
        return to_json(result)
    finally:
        _current.reset(token)


def _now() -> datetime:
    return datetime.fromtimestamp(time.time(), timezone.utc)


def _timestamp(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
