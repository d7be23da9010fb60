"""The API used to define and write workflows (as ``temporalio.workflow``).

A workflow is a class decorated with :func:`defn` with one async method
decorated with :func:`run`. Its code runs on a deterministic event loop that
replays the run's history on every workflow task: ``await`` on an activity
or a timer resolves from history when the history has the result, and
otherwise becomes a command sent back to the server.

Inside workflow code use :func:`now`, :func:`time`, :func:`random` and
:func:`uuid4` instead of the wall clock and global randomness (calling those
raises :class:`baton.exceptions.RestrictedWorkflowAccessError`), and
``asyncio.sleep`` / :func:`sleep` for durable timers.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any, NoReturn, TypeVar, overload

from baton._protocol import format_duration
from baton.common import (
    RetryPolicy,
    SearchAttributeUpdate,
    TypedSearchAttributes,
    WorkflowIDReusePolicy,
)
from baton.converter import from_json, to_json, type_hints_of
from baton.exceptions import BatonError

__all__ = [
    "ActivityCancellationType",
    "ActivityHandle",
    "ChildWorkflowCancellationType",
    "ChildWorkflowHandle",
    "ContinueAsNewError",
    "ExternalWorkflowHandle",
    "Info",
    "ParentClosePolicy",
    "ParentInfo",
    "continue_as_new",
    "defn",
    "deprecate_patch",
    "execute_activity",
    "execute_child_workflow",
    "execute_local_activity",
    "get_external_workflow_handle",
    "in_workflow",
    "info",
    "logger",
    "memo",
    "memo_value",
    "now",
    "patched",
    "query",
    "random",
    "run",
    "signal",
    "sleep",
    "start_activity",
    "start_child_workflow",
    "start_local_activity",
    "time",
    "time_ns",
    "unsafe",
    "update",
    "upsert_search_attributes",
    "uuid4",
    "wait_condition",
]

_T = TypeVar("_T")
_R = TypeVar("_R")
_C = TypeVar("_C", bound=type)
_F = TypeVar("_F", bound=Callable[..., Any])

PATCH_MARKER_NAME = "core_patch"
"""``MarkerRecorded.marker_name`` of :func:`patched` markers (Temporal's name).
Details are ``{"patch_id": str, "deprecated": bool}``."""


# --- definitions ------------------------------------------------------------------


@dataclass
class _SignalDefinition:
    name: str | None
    fn: Callable[..., Any]
    arg_types: list[Any]


@dataclass
class _QueryDefinition:
    name: str | None
    fn: Callable[..., Any]
    arg_types: list[Any]
    ret_type: Any


@dataclass
class _UpdateDefinition:
    name: str | None
    fn: Callable[..., Any]
    arg_types: list[Any]
    ret_type: Any
    validator: Callable[..., None] | None = None


@dataclass
class _Definition:
    name: str
    cls: type
    run_fn: Callable[..., Awaitable[Any]]
    arg_types: list[Any]
    ret_type: Any
    signals: dict[str | None, _SignalDefinition] = field(default_factory=lambda: {})
    queries: dict[str | None, _QueryDefinition] = field(default_factory=lambda: {})
    updates: dict[str | None, _UpdateDefinition] = field(default_factory=lambda: {})
    failure_exception_types: tuple[type[BaseException], ...] = ()

    @staticmethod
    def of(obj: Any) -> _Definition:
        """The definition of a workflow class or its run method."""
        d = getattr(obj, "__baton_workflow_definition__", None)
        if not isinstance(d, _Definition):
            raise TypeError(f"{obj!r} is not a @workflow.defn class or its @workflow.run method")
        return d

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "signals": sorted(n for n in self.signals if n),
            "queries": sorted(n for n in self.queries if n),
            "updates": sorted(n for n in self.updates if n),
        }


@overload
def defn(cls: _C) -> _C: ...


@overload
def defn(
    *,
    name: str | None = None,
    sandboxed: bool = True,
    failure_exception_types: Sequence[type[BaseException]] = (),
) -> Callable[[_C], _C]: ...


def defn(
    cls: _C | None = None,
    *,
    name: str | None = None,
    sandboxed: bool = True,
    failure_exception_types: Sequence[type[BaseException]] = (),
) -> _C | Callable[[_C], _C]:
    """Marks a class as a workflow. ``name`` defaults to the class name.

    ``failure_exception_types`` lists exception types that, raised by the
    workflow, fail the workflow (like :class:`ApplicationError`) instead of
    failing the workflow task. ``sandboxed`` is accepted for Temporal
    compatibility; Baton's determinism checks are a profile hook instead of
    a sandbox (see ``baton._determinism``).
    """
    del sandboxed

    def decorate(c: _C) -> _C:
        run_fn: Callable[..., Awaitable[Any]] | None = None
        signals: dict[str | None, _SignalDefinition] = {}
        queries: dict[str | None, _QueryDefinition] = {}
        updates: dict[str | None, _UpdateDefinition] = {}
        for klass in reversed(c.__mro__):
            for attr, member in vars(klass).items():
                if getattr(member, "__baton_workflow_run__", False):
                    run_fn = member
                s = getattr(member, "__baton_signal__", None)
                if isinstance(s, _SignalDefinition):
                    signals[s.name] = s
                q = getattr(member, "__baton_query__", None)
                if isinstance(q, _QueryDefinition):
                    queries[q.name] = q
                u = getattr(member, "__baton_update__", None)
                if isinstance(u, _UpdateDefinition):
                    updates[u.name] = u
                del attr
        if run_fn is None:
            raise ValueError(f"workflow class {c.__name__} has no @workflow.run method")
        arg_types, ret_type = type_hints_of(run_fn)
        d = _Definition(
            name=name or c.__name__,
            cls=c,
            run_fn=run_fn,
            arg_types=arg_types,
            ret_type=ret_type,
            signals=signals,
            queries=queries,
            updates=updates,
            failure_exception_types=tuple(failure_exception_types),
        )
        c.__baton_workflow_definition__ = d  # type: ignore[attr-defined]
        run_fn.__baton_workflow_definition__ = d  # type: ignore[attr-defined]
        return c

    if cls is not None:
        return decorate(cls)
    return decorate


def run(fn: _F) -> _F:
    """Marks the workflow's entry point: an ``async def`` method."""
    if not inspect.iscoroutinefunction(fn):
        raise ValueError("@workflow.run must decorate an async method")
    fn.__baton_workflow_run__ = True  # type: ignore[attr-defined]
    return fn


def _named(
    attr: str,
    fn: Callable[..., Any] | None,
    name: str | None,
    make: Callable[[Callable[..., Any], str | None], Any],
) -> Any:
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        setattr(f, attr, make(f, name if name is not None else f.__name__))
        return f

    if fn is not None:
        return decorate(fn)
    return decorate


def signal(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, dynamic: bool = False
) -> Any:
    """Marks a signal handler (sync or async). Handlers run in history
    order at the start of the workflow task that delivers them, before the
    workflow continues; ``dynamic=True`` receives every signal without a
    handler of its own, with the name as first argument."""
    return _named(
        "__baton_signal__",
        fn,
        None if dynamic else name,
        lambda f, n: _SignalDefinition(n if not dynamic else None, f, type_hints_of(f)[0]),
    )


def query(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, dynamic: bool = False
) -> Any:
    """Marks a query handler: a plain (not ``async``) method that answers
    from the workflow's state after replay and must not change it or issue
    commands; ``dynamic=True`` receives every query without a handler of
    its own, with the name as first argument."""
    return _named(
        "__baton_query__",
        fn,
        None if dynamic else name,
        lambda f, n: _QueryDefinition(n if not dynamic else None, f, *type_hints_of(f)),
    )


def update(
    fn: Callable[..., Any] | None = None, *, name: str | None = None, dynamic: bool = False
) -> Any:
    """Marks an update handler (sync or async; it may await activities and
    timers). ``@handler.validator`` adds a validator: a plain method taking
    the same arguments that raises to reject the update, and must not
    change state or issue commands. The validator runs when a client sends
    the update (a rejection records nothing), never on replay; the handler
    runs once the update is recorded, and what it returns (or the
    :class:`ApplicationError` it raises) goes back to the client.
    ``dynamic=True`` receives every update without a handler of its own,
    with the name as first argument."""

    def make(f: Callable[..., Any], n: str | None) -> _UpdateDefinition:
        d = _UpdateDefinition(n if not dynamic else None, f, *type_hints_of(f))

        def validator(v: Callable[..., None]) -> Callable[..., None]:
            d.validator = v
            return v

        f.validator = validator  # type: ignore[attr-defined]
        return d

    return _named("__baton_update__", fn, None if dynamic else name, make)


# --- runtime ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParentInfo:
    """The parent of a child workflow (``workflow.info().parent``)."""

    namespace: str
    run_id: str
    workflow_id: str


@dataclass(frozen=True)
class Info:
    """What a workflow knows about its run (``workflow.info()``)."""

    namespace: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    attempt: int
    start_time: datetime
    execution_timeout: timedelta | None
    run_timeout: timedelta | None
    task_timeout: timedelta
    history_length: int
    suggest_continue_as_new: bool = False
    #: The run this one continues (continue-as-new or a retry), if any.
    continued_run_id: str | None = None
    #: The first run of the chain continue-as-new and retries make.
    first_execution_run_id: str = ""
    #: The workflow retry policy the run was started with.
    retry_policy: RetryPolicy | None = None
    #: The memo as JSON (``workflow.memo()`` is the same mapping).
    raw_memo: Mapping[str, Any] = field(default_factory=lambda: {})
    #: The run that started this one as its child, if any.
    parent: ParentInfo | None = None
    #: The run's custom search attributes: as started, then as this code
    #: upserted them (``upsert_search_attributes``).
    typed_search_attributes: TypedSearchAttributes = field(
        default_factory=lambda: TypedSearchAttributes.empty
    )

    def is_continue_as_new_suggested(self) -> bool:
        return self.suggest_continue_as_new


class ActivityCancellationType(IntEnum):
    """What cancelling an activity's task does (Temporal's meanings).

    TRY_CANCEL asks the server to cancel and resolves at once with
    :class:`ActivityError` caused by :class:`CancelledError`;
    WAIT_CANCELLATION_COMPLETED asks and waits until the activity reports
    its cancellation (or finishes); ABANDON resolves at once and asks nothing.
    """

    TRY_CANCEL = 0
    WAIT_CANCELLATION_COMPLETED = 1
    ABANDON = 2


class _Runtime:
    """Implemented by the workflow event loop (``baton._workflow_instance``)."""

    def workflow_info(self) -> Info:
        raise NotImplementedError

    def workflow_now(self) -> datetime:
        raise NotImplementedError

    def workflow_random(self) -> _random.Random:
        raise NotImplementedError

    def workflow_is_replaying(self) -> bool:
        raise NotImplementedError

    def workflow_patch(self, patch_id: str, *, deprecated: bool) -> bool:
        raise NotImplementedError

    def workflow_upsert_search_attributes(
        self, updates: Sequence[SearchAttributeUpdate[Any]]
    ) -> None:
        raise NotImplementedError

    def workflow_wait_condition(self, fn: Callable[[], bool]) -> asyncio.Future[bool]:
        raise NotImplementedError

    def workflow_start_child(
        self,
        attributes: dict[str, Any],
        *,
        cancellation_type: ChildWorkflowCancellationType,
        result_type: Any,
    ) -> asyncio.Future[ChildWorkflowHandle[Any]]:
        raise NotImplementedError

    def workflow_external(
        self, command_type: str, attributes: dict[str, Any]
    ) -> asyncio.Future[None]:
        raise NotImplementedError

    def workflow_start_activity(
        self,
        activity: Any,
        args: Sequence[Any],
        *,
        task_queue: str | None,
        schedule_to_close_timeout: timedelta | None,
        schedule_to_start_timeout: timedelta | None,
        start_to_close_timeout: timedelta | None,
        heartbeat_timeout: timedelta | None,
        retry_policy: RetryPolicy | None,
        cancellation_type: ActivityCancellationType,
        activity_id: str | None,
        result_type: Any,
        inline: bool,
    ) -> ActivityHandle[Any]:
        raise NotImplementedError

    def workflow_start_local_activity(
        self,
        activity: Any,
        args: Sequence[Any],
        *,
        schedule_to_close_timeout: timedelta | None,
        start_to_close_timeout: timedelta | None,
        retry_policy: RetryPolicy | None,
        local_retry_threshold: timedelta,
        activity_id: str | None,
        result_type: Any,
    ) -> ActivityHandle[Any]:
        raise NotImplementedError


def _runtime() -> _Runtime:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if not isinstance(loop, _Runtime):
        raise BatonError("not in workflow code: this function works only inside a workflow")
    return loop


def in_workflow() -> bool:
    try:
        return isinstance(asyncio.get_running_loop(), _Runtime)
    except RuntimeError:
        return False


def info() -> Info:
    return _runtime().workflow_info()


def upsert_search_attributes(updates: Sequence[SearchAttributeUpdate[Any]]) -> None:
    """Sets (``key.value_set(v)``) or removes (``key.value_unset()``)
    custom search attributes of the run, as temporalio's; the server types
    them by the namespace's registry and fails the workflow task
    (BAD_SEARCH_ATTRIBUTES) on an unknown name or a wrong type.
    ``info().typed_search_attributes`` reflects the change at once."""
    _runtime().workflow_upsert_search_attributes(list(updates))


def memo() -> Mapping[str, Any]:
    """The run's memo (set at start, carried by continue-as-new unless
    changed), as JSON values."""
    return _runtime().workflow_info().raw_memo


_MISSING: Any = object()


def memo_value(key: str, default: Any = _MISSING, *, type_hint: type | None = None) -> Any:
    """One memo value, converted to ``type_hint`` if given; ``default``
    when the key is absent, else :class:`KeyError`."""
    values = memo()
    if key not in values:
        if default is _MISSING:
            raise KeyError(f"memo has no key {key!r}")
        return default
    return from_json(values[key], type_hint)


def now() -> datetime:
    """The workflow's current time (UTC, aware): the start time of the
    current workflow task, identical on every replay."""
    return _runtime().workflow_now()


def time() -> float:
    """:func:`now` as seconds since the epoch (also ``loop.time()``)."""
    return _runtime().workflow_now().timestamp()


def time_ns() -> int:
    return int(_runtime().workflow_now().timestamp() * 1_000_000_000)


def random() -> _random.Random:
    """A random generator seeded from the run id: same values on replay."""
    return _runtime().workflow_random()


def uuid4() -> _uuid.UUID:
    """A version 4 UUID drawn from :func:`random` (replay-safe)."""
    return _uuid.UUID(int=random().getrandbits(128), version=4)


def patched(patch_id: str) -> bool:
    """True when the code after a change may run: always on new runs and on
    runs whose history recorded this patch; False when replaying history
    written before the change. Records a ``core_patch`` marker."""
    return _runtime().workflow_patch(patch_id, deprecated=False)


def deprecate_patch(patch_id: str) -> None:
    """Marks a patch as the only code path left: histories with or without
    its marker replay, and new runs record a deprecated marker."""
    _runtime().workflow_patch(patch_id, deprecated=True)


async def sleep(duration: float | timedelta) -> None:
    """A durable timer (``asyncio.sleep`` inside a workflow is the same)."""
    seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
    await asyncio.sleep(seconds)


async def wait_condition(
    fn: Callable[[], bool], *, timeout: float | timedelta | None = None
) -> None:
    """Waits until ``fn()`` is true; checked whenever the workflow is idle.
    With ``timeout`` (a durable timer) raises ``asyncio.TimeoutError``."""
    fut = _runtime().workflow_wait_condition(fn)
    if timeout is None:
        await fut
        return
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    await asyncio.wait_for(fut, seconds)


class _Unsafe:
    @staticmethod
    def is_replaying() -> bool:
        """True while the workflow re-runs code whose commands history already has."""
        return _runtime().workflow_is_replaying()


unsafe = _Unsafe()


class _ReplayAwareLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """``workflow.logger``: adds the run's ids and stays silent on replay."""

    def isEnabledFor(self, level: int) -> bool:
        if in_workflow() and _runtime().workflow_is_replaying():
            return False
        return super().isEnabledFor(level)

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        if in_workflow():
            i = _runtime().workflow_info()
            extra: dict[str, Any] = dict(kwargs.get("extra") or {})
            extra.setdefault("workflow_id", i.workflow_id)
            extra.setdefault("run_id", i.run_id)
            extra.setdefault("workflow_type", i.workflow_type)
            kwargs["extra"] = extra
            msg = f"{msg} ({{'workflow_id': {i.workflow_id!r}, 'run_id': {i.run_id!r}}})"
        return msg, kwargs


logger = _ReplayAwareLogger(logging.getLogger("baton.workflow"), {})


# --- activities ----------------------------------------------------------------------


class ActivityHandle(asyncio.Task[_T]):
    """An activity started with :func:`start_activity`: an asyncio task
    whose result is the activity's result. Cancelling it cancels the
    activity according to its :class:`ActivityCancellationType`."""

    activity_id: str = ""
    _baton_started: bool = False
    _baton_cancel: Callable[[], None] | None = None

    def cancel(self, msg: Any | None = None) -> bool:
        # Cancelled before its first step, the task would never run its
        # cancellation handling; cancel the activity itself instead (the
        # task then ends with ActivityError, as when cancelled later).
        if not self._baton_started and self._baton_cancel is not None and not self.done():
            self._baton_cancel()
            return True
        return super().cancel(msg)


_NO_ARG: Any = object()


def _args(arg: Any, args: Sequence[Any]) -> Sequence[Any]:
    if arg is not _NO_ARG:
        if args:
            raise ValueError("pass either one positional arg or args=[...], not both")
        return [arg]
    return args


@overload
def start_activity(
    activity: Callable[..., Awaitable[_R]],
    arg: Any = _NO_ARG,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    result_type: type | None = None,
    inline: bool = True,
) -> ActivityHandle[_R]: ...


@overload
def start_activity(
    activity: Callable[..., _R],
    arg: Any = _NO_ARG,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    result_type: type | None = None,
    inline: bool = True,
) -> ActivityHandle[_R]: ...


@overload
def start_activity(
    activity: str,
    arg: Any = _NO_ARG,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    result_type: type | None = None,
    inline: bool = True,
) -> ActivityHandle[Any]: ...


def start_activity(
    activity: Any,
    arg: Any = _NO_ARG,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    result_type: type | None = None,
    inline: bool = True,
) -> ActivityHandle[Any]:
    """Schedules an activity and returns its handle (an asyncio task).

    ``activity`` is an ``@activity.defn`` function or an activity type name.
    One of ``start_to_close_timeout`` and ``schedule_to_close_timeout`` is
    required, as in Temporal. ``inline=False`` keeps the activity from
    running inline (in this app, inside the workflow task) when the app
    inlines activities: it is pushed as an ordinary activity task.
    """
    if start_to_close_timeout is None and schedule_to_close_timeout is None:
        raise ValueError("activity needs start_to_close_timeout or schedule_to_close_timeout")
    return _runtime().workflow_start_activity(
        activity,
        _args(arg, args),
        task_queue=task_queue,
        schedule_to_close_timeout=schedule_to_close_timeout,
        schedule_to_start_timeout=schedule_to_start_timeout,
        start_to_close_timeout=start_to_close_timeout,
        heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy,
        cancellation_type=cancellation_type,
        activity_id=activity_id,
        result_type=result_type,
        inline=inline,
    )


LOCAL_ACTIVITY_MARKER_NAME = "LocalActivity"
"""The marker that records a local activity's outcome (docs/protocol.md §14.6)."""

DEFAULT_LOCAL_RETRY_THRESHOLD = timedelta(minutes=1)
"""Back-offs up to this are waited in-process; longer ones on a durable timer."""


def start_local_activity(
    activity: Any,
    arg: Any = _NO_ARG,
    *,
    args: Sequence[Any] = (),
    schedule_to_close_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    local_retry_threshold: timedelta | None = None,
    activity_id: str | None = None,
    result_type: type | None = None,
) -> ActivityHandle[Any]:
    """Starts a local activity and returns its handle (an asyncio task).

    As in Temporal, a local activity runs in this app during the workflow
    task that reaches it, and its outcome is recorded as a marker with that
    task's completion: no activity task, no push of its own. Attempts are
    retried in-process while the back-off is at most
    ``local_retry_threshold`` (default 1 minute), then after a durable
    timer. Cancelling the handle cancels it at once (``TRY_CANCEL``).
    One of ``start_to_close_timeout`` and ``schedule_to_close_timeout`` is
    required.
    """
    if start_to_close_timeout is None and schedule_to_close_timeout is None:
        raise ValueError("local activity needs start_to_close_timeout or schedule_to_close_timeout")
    return _runtime().workflow_start_local_activity(
        activity,
        _args(arg, args),
        schedule_to_close_timeout=schedule_to_close_timeout,
        start_to_close_timeout=start_to_close_timeout,
        retry_policy=retry_policy,
        local_retry_threshold=local_retry_threshold or DEFAULT_LOCAL_RETRY_THRESHOLD,
        activity_id=activity_id,
        result_type=result_type,
    )


async def execute_local_activity(
    activity: Any,
    arg: Any = _NO_ARG,
    *,
    args: Sequence[Any] = (),
    schedule_to_close_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    local_retry_threshold: timedelta | None = None,
    activity_id: str | None = None,
    result_type: type | None = None,
) -> Any:
    """Runs a local activity (see :func:`start_local_activity`) and returns
    its result; raises ``ActivityError`` when it failed for good."""
    return await start_local_activity(
        activity,
        arg,
        args=args,
        schedule_to_close_timeout=schedule_to_close_timeout,
        start_to_close_timeout=start_to_close_timeout,
        retry_policy=retry_policy,
        local_retry_threshold=local_retry_threshold,
        activity_id=activity_id,
        result_type=result_type,
    )


@overload
async def execute_activity(
    activity: Callable[..., Awaitable[_R]],
    arg: Any = _NO_ARG,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    result_type: type | None = None,
    inline: bool = True,
) -> _R: ...


@overload
async def execute_activity(
    activity: Callable[..., _R],
    arg: Any = _NO_ARG,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    result_type: type | None = None,
    inline: bool = True,
) -> _R: ...


@overload
async def execute_activity(
    activity: str,
    arg: Any = _NO_ARG,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    result_type: type | None = None,
    inline: bool = True,
) -> Any: ...


async def execute_activity(
    activity: Any,
    arg: Any = _NO_ARG,
    *,
    args: Sequence[Any] = (),
    task_queue: str | None = None,
    schedule_to_close_timeout: timedelta | None = None,
    schedule_to_start_timeout: timedelta | None = None,
    start_to_close_timeout: timedelta | None = None,
    heartbeat_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
    activity_id: str | None = None,
    result_type: type | None = None,
    inline: bool = True,
) -> Any:
    """Runs an activity and returns its result; raises
    :class:`baton.exceptions.ActivityError` when it fails for good."""
    return await start_activity(
        activity,
        arg,
        args=args,
        task_queue=task_queue,
        schedule_to_close_timeout=schedule_to_close_timeout,
        schedule_to_start_timeout=schedule_to_start_timeout,
        start_to_close_timeout=start_to_close_timeout,
        heartbeat_timeout=heartbeat_timeout,
        retry_policy=retry_policy,
        cancellation_type=cancellation_type,
        activity_id=activity_id,
        result_type=result_type,
        inline=inline,
    )


# --- continue-as-new ------------------------------------------------------------------


class ContinueAsNewError(BaseException):
    """Raised by :func:`continue_as_new` (Temporal's mechanism): the event
    loop turns it into a ContinueAsNewWorkflowExecution command. A
    ``BaseException``, so ``except Exception`` in workflow code does not
    swallow it."""

    def __init__(self, attributes: dict[str, Any]) -> None:
        super().__init__("continue as new")
        #: The command's attributes, as sent to the server.
        self.attributes = attributes


def continue_as_new(
    arg: Any = _NO_ARG,
    *,
    args: Sequence[Any] = (),
    workflow: Any = None,
    task_queue: str | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    memo: Mapping[str, Any] | None = None,
    search_attributes: TypedSearchAttributes | None = None,
) -> NoReturn:
    """Ends this run and starts the next run of the chain, with the same
    workflow id, a fresh history and these arguments. Options not given
    (workflow type, task queue, timeouts, retry policy, memo, search
    attributes) are carried.
    Never returns: raises :class:`ContinueAsNewError`."""
    _runtime()
    attributes: dict[str, Any] = {"input": [to_json(a) for a in _args(arg, args)]}
    if workflow is not None:
        attributes["workflow_type"] = (
            workflow if isinstance(workflow, str) else _Definition.of(workflow).name
        )
    if task_queue is not None:
        attributes["task_queue"] = task_queue
    for key, value in (
        ("workflow_run_timeout", run_timeout),
        ("workflow_task_timeout", task_timeout),
    ):
        if value is not None:
            attributes[key] = format_duration(value)
    if retry_policy is not None:
        attributes["retry_policy"] = retry_policy.to_wire()
    if memo is not None:
        attributes["memo"] = {k: to_json(v) for k, v in memo.items()}
    if search_attributes is not None:
        attributes["search_attributes"] = search_attributes.to_wire()
    raise ContinueAsNewError(attributes)


# --- child workflows and other workflows -------------------------------------------------


class ParentClosePolicy(IntEnum):
    """What the parent's close does to a child still open (Temporal's
    values): TERMINATE (the default), ABANDON, REQUEST_CANCEL."""

    TERMINATE = 1
    ABANDON = 2
    REQUEST_CANCEL = 3


class ChildWorkflowCancellationType(IntEnum):
    """What cancelling the task that awaits a child does (Temporal's
    values). ABANDON asks nothing and resolves at once; TRY_CANCEL asks
    the child to cancel and resolves at once; WAIT_CANCELLATION_REQUESTED
    asks and resolves once the child recorded the request;
    WAIT_CANCELLATION_COMPLETED (the default) asks and waits for the child
    to close, resolving with its outcome."""

    ABANDON = 0
    TRY_CANCEL = 1
    WAIT_CANCELLATION_COMPLETED = 2
    WAIT_CANCELLATION_REQUESTED = 3


class ChildWorkflowHandle(asyncio.Task[_T]):
    """A started child workflow: an asyncio task whose result is the
    child's result (a failure is :class:`ChildWorkflowError` with the
    cause). Cancelling it cancels the child as its
    :class:`ChildWorkflowCancellationType` says."""

    id: str = ""
    first_execution_run_id: str = ""
    _baton_started: bool = False
    _baton_cancel: Callable[[], None] | None = None

    @property
    def run_id(self) -> str:
        return self.first_execution_run_id

    async def signal(self, signal: Any, arg: Any = _NO_ARG, *, args: Sequence[Any] = ()) -> None:
        """Signals the child (only this run's child qualifies); returns once
        the child recorded it."""
        await _runtime().workflow_external(
            "SignalExternalWorkflowExecution",
            {
                "workflow_id": self.id,
                "signal_name": _signal_name(signal),
                "input": [to_json(a) for a in _args(arg, args)],
                "child_workflow_only": True,
            },
        )

    def cancel(self, msg: Any | None = None) -> bool:
        if not self._baton_started and self._baton_cancel is not None and not self.done():
            self._baton_cancel()
            return True
        return super().cancel(msg)


def _signal_name(signal: Any) -> str:
    if isinstance(signal, str):
        return signal
    defn = getattr(signal, "__baton_signal__", None)
    name = getattr(defn, "name", None)
    return name if isinstance(name, str) else str(getattr(signal, "__name__", ""))


async def start_child_workflow(
    workflow: Any,
    arg: Any = _NO_ARG,
    *,
    args: Sequence[Any] = (),
    id: str,
    task_queue: str | None = None,
    execution_timeout: timedelta | None = None,
    run_timeout: timedelta | None = None,
    task_timeout: timedelta | None = None,
    retry_policy: RetryPolicy | None = None,
    id_reuse_policy: WorkflowIDReusePolicy | None = None,
    parent_close_policy: ParentClosePolicy | None = None,
    cancellation_type: ChildWorkflowCancellationType = (
        ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED
    ),
    memo: Mapping[str, Any] | None = None,
    search_attributes: TypedSearchAttributes | None = None,
    result_type: Any = None,
) -> ChildWorkflowHandle[Any]:
    """Starts a child workflow and returns its handle once the server
    started it; raises :class:`WorkflowAlreadyStartedError` if ``id`` is in
    use. ``workflow`` is a ``@workflow.run`` method, a workflow class or a
    workflow type name. A child has only the ``search_attributes`` given
    here (none of the parent's)."""
    rt = _runtime()
    if isinstance(workflow, str):
        name, ret = workflow, None
    else:
        defn = _Definition.of(workflow)
        name, ret = defn.name, defn.ret_type
    attributes: dict[str, Any] = {
        "workflow_id": id,
        "workflow_type": name,
        "input": [to_json(a) for a in _args(arg, args)],
    }
    # Unset policies are left to the server's defaults (ALLOW_DUPLICATE,
    # TERMINATE), as sdk-ts does: one command for one call (§14.3).
    if id_reuse_policy is not None:
        attributes["workflow_id_reuse_policy"] = WorkflowIDReusePolicy(id_reuse_policy).value
    if parent_close_policy is not None:
        attributes["parent_close_policy"] = ParentClosePolicy(parent_close_policy).name
    if task_queue is not None:
        attributes["task_queue"] = task_queue
    for key, value in (
        ("workflow_execution_timeout", execution_timeout),
        ("workflow_run_timeout", run_timeout),
        ("workflow_task_timeout", task_timeout),
    ):
        if value is not None:
            attributes[key] = format_duration(value)
    if retry_policy is not None:
        attributes["retry_policy"] = retry_policy.to_wire()
    if memo is not None:
        attributes["memo"] = {k: to_json(v) for k, v in memo.items()}
    if search_attributes is not None:
        attributes["search_attributes"] = search_attributes.to_wire()
    return await rt.workflow_start_child(
        attributes,
        cancellation_type=ChildWorkflowCancellationType(cancellation_type),
        result_type=result_type if result_type is not None else ret,
    )


async def execute_child_workflow(workflow: Any, arg: Any = _NO_ARG, **kwargs: Any) -> Any:
    """Starts a child workflow and waits for its result."""
    handle = await start_child_workflow(workflow, arg, **kwargs)
    return await handle


class ExternalWorkflowHandle:
    """A handle to another workflow: signal it or request its cancellation.
    Each is recorded in this workflow's history and returns once the target
    recorded it, or raises :class:`ApplicationError` when no open run
    matched."""

    def __init__(self, workflow_id: str, run_id: str | None) -> None:
        self.id = workflow_id
        self.run_id = run_id

    def _target(self) -> dict[str, Any]:
        target: dict[str, Any] = {"workflow_id": self.id}
        if self.run_id:
            target["run_id"] = self.run_id
        return target

    async def signal(self, signal: Any, arg: Any = _NO_ARG, *, args: Sequence[Any] = ()) -> None:
        await _runtime().workflow_external(
            "SignalExternalWorkflowExecution",
            {
                **self._target(),
                "signal_name": _signal_name(signal),
                "input": [to_json(a) for a in _args(arg, args)],
            },
        )

    async def cancel(self) -> None:
        await _runtime().workflow_external("RequestCancelExternalWorkflowExecution", self._target())


def get_external_workflow_handle(
    workflow_id: str, *, run_id: str | None = None
) -> ExternalWorkflowHandle:
    _runtime()
    return ExternalWorkflowHandle(workflow_id, run_id)


def _definitions(workflows: Sequence[type]) -> Mapping[str, _Definition]:  # pyright: ignore[reportUnusedFunction]
    out: dict[str, _Definition] = {}
    for w in workflows:
        d = _Definition.of(w)
        if d.name in out:
            raise ValueError(f"workflow {d.name!r} is registered twice")
        out[d.name] = d
    return out
