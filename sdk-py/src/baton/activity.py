"""The API used inside activities (as ``temporalio.activity``).

An activity is a plain function, sync or ``async``, decorated with
:func:`defn`. Sync activities run in a thread pool. Inside one,
:func:`info` describes the attempt, :func:`heartbeat` records progress
(throttled REST calls to the server, which also report cancellation) and
:func:`raise_complete_async` hands completion over to another process,
which finishes the activity with ``Client.get_async_activity_handle``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
from collections.abc import Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar, overload

from baton.converter import type_hints_of
from baton.exceptions import BatonError

__all__ = [
    "Info",
    "defn",
    "heartbeat",
    "in_activity",
    "info",
    "is_cancelled",
    "logger",
    "raise_complete_async",
    "wait_for_cancelled",
    "wait_for_cancelled_sync",
]

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass
class _Definition:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    arg_types: list[Any]
    ret_type: Any

    @staticmethod
    def of(fn: Any) -> _Definition:
        d = getattr(fn, "__baton_activity_definition__", None)
        if not isinstance(d, _Definition):
            raise TypeError(f"{fn!r} is not an @activity.defn function")
        return d


@overload
def defn(fn: _F) -> _F: ...


@overload
def defn(
    *, name: str | None = None, no_thread_cancel_exception: bool = False
) -> Callable[[_F], _F]: ...


def defn(
    fn: _F | None = None,
    *,
    name: str | None = None,
    no_thread_cancel_exception: bool = False,
) -> _F | Callable[[_F], _F]:
    """Marks a function as an activity; ``name`` defaults to the function's
    name. ``no_thread_cancel_exception`` is accepted for Temporal
    compatibility."""
    del no_thread_cancel_exception

    def decorate(f: _F) -> _F:
        arg_types, ret_type = type_hints_of(f)
        f.__baton_activity_definition__ = _Definition(  # type: ignore[attr-defined]
            name=name or f.__name__,
            fn=f,
            is_async=inspect.iscoroutinefunction(f),
            arg_types=arg_types,
            ret_type=ret_type,
        )
        return f

    if fn is not None:
        return decorate(fn)
    return decorate


@dataclass(frozen=True)
class Info:
    """The attempt being run (``activity.info()``)."""

    activity_id: str
    activity_type: str
    attempt: int
    namespace: str
    workflow_id: str
    workflow_run_id: str
    workflow_type: str
    task_queue: str
    task_token: str
    """Opaque; pass it to ``Client.get_async_activity_handle``."""
    idempotency_key: str
    """``<run id>/<activity id>``: the same for every attempt."""
    scheduled_time: datetime
    started_time: datetime
    deadline: datetime
    """When this attempt times out (start-to-close, capped by schedule-to-close)."""
    heartbeat_timeout: timedelta | None
    heartbeat_details: Sequence[Any] = field(default_factory=lambda: ())
    """Details from the last heartbeat of an earlier attempt, to resume from."""
    is_local: bool = False

    @property
    def workflow_namespace(self) -> str:
        return self.namespace


class _CompleteAsyncError(BaseException):
    """Raised by :func:`raise_complete_async`; the app answers 202."""


class _Context:
    """State of one running attempt, reachable through a context variable
    (copied into the thread of a sync activity)."""

    def __init__(self, info: Info, heartbeat_fn: Callable[[Sequence[Any]], None]) -> None:
        self.info = info
        self._heartbeat_fn = heartbeat_fn
        self.cancelled = threading.Event()
        self.cancel_reason = ""
        self.last_details: Sequence[Any] = ()
        # The push's task while an async attempt runs in it (None once it
        # returned): cancellation is delivered to it only meanwhile.
        self.task: asyncio.Task[Any] | None = None
        self.cancel_delivered = False
        self.loop: asyncio.AbstractEventLoop | None = None
        self.is_async = True

    def heartbeat(self, details: Sequence[Any]) -> None:
        self.last_details = tuple(details)
        self._heartbeat_fn(self.last_details)
        if self.cancelled.is_set() and not self.is_async:
            # Sync activities learn of cancellation from heartbeat().
            raise asyncio.CancelledError(self.cancel_reason or "activity cancellation requested")

    def request_cancel(self, reason: str) -> None:
        if self.cancelled.is_set():
            return
        self.cancel_reason = reason
        self.cancelled.set()
        if self.task is not None and self.loop is not None:
            self.loop.call_soon_threadsafe(self._cancel_task)

    def _cancel_task(self) -> None:
        # On the loop, so it cannot race the attempt's return.
        if self.task is not None and not self.task.done():
            self.cancel_delivered = True
            self.task.cancel()


_current: contextvars.ContextVar[_Context | None] = contextvars.ContextVar(
    "baton_activity", default=None
)


def _context() -> _Context:
    ctx = _current.get()
    if ctx is None:
        raise BatonError("not in activity code: this function works only inside an activity")
    return ctx


def in_activity() -> bool:
    return _current.get() is not None


def info() -> Info:
    return _context().info


def heartbeat(*details: Any) -> None:
    """Records progress. The latest details reach the server at most every
    0.8 × heartbeat timeout (30 s without one); a later attempt reads them
    from ``info().heartbeat_details``.

    When the workflow asked for cancellation, an async activity gets
    ``asyncio.CancelledError`` at its next ``await``; a sync activity gets it
    raised from its next ``heartbeat()`` call (or polls :func:`is_cancelled`).
    Let it propagate: the app reports the cancellation.
    """
    _context().heartbeat(details)


def is_cancelled() -> bool:
    return _context().cancelled.is_set()


async def wait_for_cancelled() -> None:
    ctx = _context()
    while not ctx.cancelled.is_set():
        await asyncio.sleep(0.1)


def wait_for_cancelled_sync(timeout: timedelta | float | None = None) -> None:
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    _context().cancelled.wait(seconds)


def raise_complete_async() -> None:
    """Ends this function without completing the activity: the push is
    answered 202 and the activity stays open until someone calls
    ``Client.get_async_activity_handle(task_token).complete(...)`` (or fail,
    or it times out). Pass ``info().task_token`` to that process first."""
    _context()
    raise _CompleteAsyncError()


class _ActivityLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        ctx = _current.get()
        if ctx is not None:
            i = ctx.info
            extra: dict[str, Any] = dict(kwargs.get("extra") or {})
            extra.setdefault("activity_id", i.activity_id)
            extra.setdefault("activity_type", i.activity_type)
            extra.setdefault("attempt", i.attempt)
            extra.setdefault("workflow_id", i.workflow_id)
            kwargs["extra"] = extra
            msg = f"{msg} ({{'activity_id': {i.activity_id!r}, 'attempt': {i.attempt}, 'workflow_id': {i.workflow_id!r}}})"
        return msg, kwargs


logger = _ActivityLogger(logging.getLogger("baton.activity"), {})
