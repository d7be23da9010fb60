"""Deterministic workflow execution: a custom asyncio event loop that
replays a run's history and produces the commands of the current workflow
task.

A workflow task is handled by a fresh :class:`WorkflowInstance` that
replays the whole history (paged in when the push carried only its newest
events), or by the instance that answered the run's previous task, kept by
a long-lived app and fed only the events that followed (a sticky push,
:meth:`WorkflowInstance.advance`, docs/protocol.md §5.10): the replay loop
goes on from where that task left it, so both give the same commands.

1. The history is cut into *activations* at each WorkflowTaskStarted event
   that was followed by WorkflowTaskCompleted (a task whose answer the
   server took), plus the final WorkflowTaskStarted (the task being handled).
   A WorkflowTaskStarted followed by WorkflowTaskFailed/TimedOut produced
   nothing and is skipped.
2. Before an activation runs, the results that arrived since the previous
   one (ActivityTaskCompleted/Failed/TimedOut/Canceled, TimerFired, the
   start event) resolve their futures, in history order. Signals and
   updates go first: their handlers start, in history order, then the main
   coroutine (in the first activation), and all run until blocked before
   any other result is applied (Temporal's job order); a cancellation
   request then cancels the main task. An update's handler runs
   for every WorkflowExecutionUpdateAdmitted (its validator ran before the
   server admitted it, and never runs on replay) and answers
   CompleteWorkflowUpdate when it returns. A child's start, its close, and
   the outcome of a signal or cancellation request to another workflow
   resolve their futures by the Initiated event they name. The loop's
   clock is the activation's WorkflowTaskStarted time.
3. The loop runs ready callbacks until every task is blocked, checking
   ``wait_condition`` predicates whenever it is idle. Awaiting an activity
   or a timer adds a command.
4. For a replayed activation, the commands it produced must match, in
   order, the command events the server recorded after its
   WorkflowTaskCompleted (ActivityTaskScheduled, TimerStarted,
   MarkerRecorded, …). A mismatch raises :class:`NonDeterminismError` with
   the event id and both sides. The final activation's commands are the
   answer. docs/protocol.md §14 is the contract, and tests/replay's
   vectors pin it for both SDKs.

The loop implements only what asyncio's futures, tasks, ``sleep``,
``gather``, ``wait``, ``wait_for``/``timeout``, locks, events and queues
need; IO methods raise. ``call_later``/``call_at`` become durable timers
(StartTimer commands) and cancelling their handle becomes CancelTimer, so
``asyncio.sleep`` in workflow code is a durable timer.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import dataclasses
import hashlib
import inspect
import json
import logging
import random
import sys
from collections.abc import Callable, Container, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from baton import _determinism
from baton._protocol import (
    JSON,
    CommandDict,
    EventDict,
    FailureDict,
    WorkflowTaskRequest,
    format_duration,
    parse_duration,
    parse_timestamp,
)
from baton.common import RetryPolicy, SearchAttributeUpdate, TypedSearchAttributes
from baton.converter import (
    decode_args,
    encode_args,
    error_to_failure,
    failure_to_error,
    from_json,
    to_json,
    type_hints_of,
)
from baton.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    ChildWorkflowError,
    FailureError,
    NonDeterminismError,
    RetryState,
    TerminatedError,
    TimeoutError,
    TimeoutType,
    WorkflowAlreadyStartedError,
)
from baton.workflow import (
    LOCAL_ACTIVITY_MARKER_NAME,
    PATCH_MARKER_NAME,
    ActivityCancellationType,
    ActivityHandle,
    ChildWorkflowCancellationType,
    ChildWorkflowHandle,
    ContinueAsNewError,
    Info,
    ParentInfo,
    _Definition,
    _Runtime,
    _UpdateDefinition,
)

log = logging.getLogger("baton.workflow")

# Events that a command of a completed workflow task produced, in the order
# the server appended them.
_COMMAND_EVENTS = frozenset(
    {
        "ActivityTaskScheduled",
        "ActivityTaskCancelRequested",
        "TimerStarted",
        "TimerCanceled",
        "MarkerRecorded",
        "UpsertWorkflowSearchAttributes",
        "WorkflowExecutionCompleted",
        "WorkflowExecutionFailed",
        "WorkflowExecutionCanceled",
        "WorkflowExecutionContinuedAsNew",
        "WorkflowExecutionUpdateCompleted",
        "StartChildWorkflowExecutionInitiated",
        "SignalExternalWorkflowExecutionInitiated",
        "RequestCancelExternalWorkflowExecutionInitiated",
    }
)
# Outcomes of children and of requests to other workflows, by Initiated id.
_CHILD_EVENTS = frozenset(
    {
        "StartChildWorkflowExecutionFailed",
        "ChildWorkflowExecutionStarted",
        "ChildWorkflowExecutionCompleted",
        "ChildWorkflowExecutionFailed",
        "ChildWorkflowExecutionCanceled",
        "ChildWorkflowExecutionTimedOut",
        "ChildWorkflowExecutionTerminated",
    }
)
_EXTERNAL_EVENTS = frozenset(
    {
        "ExternalWorkflowExecutionSignaled",
        "SignalExternalWorkflowExecutionFailed",
        "ExternalWorkflowExecutionCancelRequested",
        "RequestCancelExternalWorkflowExecutionFailed",
    }
)
# Events that feed the next activation.
_RESOLUTION_EVENTS = frozenset(
    {
        "WorkflowExecutionStarted",
        "ActivityTaskCompleted",
        "ActivityTaskFailed",
        "ActivityTaskTimedOut",
        "ActivityTaskCanceled",
        "TimerFired",
        "WorkflowExecutionSignaled",
        "WorkflowExecutionCancelRequested",
        "WorkflowExecutionUpdateAdmitted",
    }
    | _CHILD_EVENTS
    | _EXTERNAL_EVENTS
)
_ACTIVITY_CLOSED = frozenset(
    {"ActivityTaskCompleted", "ActivityTaskFailed", "ActivityTaskTimedOut", "ActivityTaskCanceled"}
)
_CLOSING = {
    "CompleteWorkflowExecution": "WorkflowExecutionCompleted",
    "FailWorkflowExecution": "WorkflowExecutionFailed",
    "CancelWorkflowExecution": "WorkflowExecutionCanceled",
    "ContinueAsNewWorkflowExecution": "WorkflowExecutionContinuedAsNew",
}
# Jobs of an activation that run before the others (see _activation).
_FIRST_JOBS = frozenset(
    {"WorkflowExecutionStarted", "WorkflowExecutionSignaled", "WorkflowExecutionUpdateAdmitted"}
)
# Bound on callbacks run while tearing an instance down.
_TEARDOWN_STEPS = 10_000


class WorkflowTaskFailure(Exception):
    """Workflow code failed in a way that fails the task, not the workflow."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class QueryError(Exception):
    """A query could not be answered, or an update not validated (unknown
    name, bad arguments, a handler that is async or issued commands)."""


class _Command:
    __slots__ = ("attributes", "command_type", "target")

    def __init__(self, command_type: str, attributes: dict[str, Any], target: Any = None) -> None:
        self.command_type = command_type
        self.attributes = attributes
        self.target = target

    def to_wire(self) -> CommandDict:
        return {"command_type": self.command_type, "attributes": self.attributes}

    def describe(self) -> str:
        return _describe("command", self.command_type, self.attributes)


def _describe_event(e: EventDict) -> str:
    return _describe("event", e["event_type"], e.get("attributes") or {})


# What a non-determinism message shows of a command or event
# (docs/protocol.md §14.5): the members that matching compares, JSON-quoted.
_DESCRIBED: dict[str, tuple[str, ...]] = {
    "ScheduleActivityTask": ("activity_type", "activity_id"),
    "ActivityTaskScheduled": ("activity_type", "activity_id"),
    "RequestCancelActivityTask": ("activity_id",),
    "ActivityTaskCancelRequested": ("scheduled_event_id",),
    "StartTimer": ("timer_id",),
    "TimerStarted": ("timer_id",),
    "CancelTimer": ("timer_id",),
    "TimerCanceled": ("timer_id",),
    "RecordMarker": ("marker_name", "patch_id", "activity_type", "activity_id"),
    "MarkerRecorded": ("marker_name", "patch_id", "activity_type", "activity_id"),
    "UpsertWorkflowSearchAttributes": ("names",),
    "CompleteWorkflowUpdate": ("update_id",),
    "WorkflowExecutionUpdateCompleted": ("update_id",),
    "StartChildWorkflowExecution": ("workflow_type", "workflow_id"),
    "StartChildWorkflowExecutionInitiated": ("workflow_type", "workflow_id"),
    "SignalExternalWorkflowExecution": ("workflow_id", "signal_name"),
    "SignalExternalWorkflowExecutionInitiated": ("workflow_id", "signal_name"),
    "RequestCancelExternalWorkflowExecution": ("workflow_id",),
    "RequestCancelExternalWorkflowExecutionInitiated": ("workflow_id",),
}


def _describe(kind: str, name: str, attributes: dict[str, Any]) -> str:
    keys = _DESCRIBED.get(name)
    if not keys:
        return name
    details = _as_dict(attributes.get("details"))
    target = _as_dict(attributes.get("workflow_execution"))

    def member(key: str) -> Any:
        if key == "patch_id" or name in ("RecordMarker", "MarkerRecorded"):
            return details.get(key) if key != "marker_name" else attributes.get(key)
        if key == "names":
            return sorted(_as_dict(attributes.get("search_attributes")))
        if key == "workflow_id" and kind == "event" and "workflow_id" not in attributes:
            return target.get("workflow_id")
        return attributes.get(key)

    if name in ("RecordMarker", "MarkerRecorded"):
        keys = tuple(k for k in keys if k == "marker_name" or member(k) is not None)
    return f"{name}(" + ", ".join(f"{k}={json.dumps(member(k))}" for k in keys) + ")"


class _Activity:
    """One scheduled activity: its command, its event ids and its future."""

    def __init__(
        self,
        activity_id: str,
        activity_type: str,
        result_type: Any,
        cancellation_type: ActivityCancellationType,
        future: asyncio.Future[Any],
    ) -> None:
        self.activity_id = activity_id
        self.activity_type = activity_type
        self.result_type = result_type
        self.cancellation_type = cancellation_type
        self.future = future
        self.command: _Command | None = None
        self.scheduled_event_id = 0
        self.cancel_requested = False
        # False when the workflow asked for it never to run inline.
        self.inline = True


class LocalActivity:
    """One local activity: what to run, where its attempts stand, and the
    future its handle waits on. ``pending`` while an attempt's outcome is
    awaited (from this app running it, or from a marker on replay)."""

    def __init__(
        self,
        activity_id: str,
        activity_type: str,
        input: JSON,
        *,
        start_to_close_timeout: timedelta | None,
        schedule_to_close_timeout: timedelta | None,
        retry_policy: RetryPolicy,
        local_retry_threshold: timedelta,
        result_type: Any,
        future: asyncio.Future[Any],
    ) -> None:
        self.activity_id = activity_id
        self.activity_type = activity_type
        self.input = input
        self.start_to_close_timeout = start_to_close_timeout
        self.schedule_to_close_timeout = schedule_to_close_timeout
        self.retry_policy = retry_policy
        self.local_retry_threshold = local_retry_threshold
        self.result_type = result_type
        self.future = future
        self.attempt = 1
        self.original_schedule_time: str | None = None
        self.pending = True
        self.backoff: asyncio.TimerHandle | None = None


class _Child:
    """One started child workflow: its command, its Initiated event id, the
    future of its start (resolving to its handle) and of its result."""

    def __init__(
        self,
        attributes: dict[str, Any],
        result_type: Any,
        cancellation_type: ChildWorkflowCancellationType,
        started: asyncio.Future[ChildWorkflowHandle[Any]],
        result: asyncio.Future[Any],
    ) -> None:
        self.workflow_id = str(attributes["workflow_id"])
        self.workflow_type = str(attributes["workflow_type"])
        self.result_type = result_type
        self.cancellation_type = cancellation_type
        self.started = started
        self.result = result
        self.command = _Command("StartChildWorkflowExecution", attributes, self)
        self.initiated_event_id = 0
        self.run_id = ""
        self.cancel: asyncio.Future[None] | None = None


class _External:
    """A signal or cancellation request to another workflow."""

    def __init__(self, command: _Command, done: asyncio.Future[None]) -> None:
        self.command = command
        self.done = done


class _TimerHandle(asyncio.TimerHandle):
    """A TimerHandle that knows its durable timer (TimerHandle has slots)."""

    __slots__ = ("baton_timer",)

    def __init__(
        self,
        when: float,
        callback: Callable[..., object],
        args: Sequence[Any],
        loop: asyncio.AbstractEventLoop,
        context: contextvars.Context | None,
    ) -> None:
        super().__init__(when, callback, args, loop, context)
        self.baton_timer: _Timer | None = None


class _Timer:
    def __init__(self, timer_id: str, handle: asyncio.TimerHandle) -> None:
        self.timer_id = timer_id
        self.handle = handle
        self.command: _Command | None = None
        self.started_event_id = 0
        self.fired = False


class WorkflowInstance(asyncio.AbstractEventLoop, _Runtime):
    """One replay of one run, on a loop of its own (see the module doc)."""

    def __init__(
        self,
        definition: _Definition,
        request: WorkflowTaskRequest,
        *,
        determinism_checks: bool = True,
    ) -> None:
        self._defn = definition
        # The push without its history: an instance kept for the run's next
        # task (the app's sticky cache) holds no history.
        self._request = cast(WorkflowTaskRequest, {**request, "history": []})
        self._history = request["history"]
        self._checks = determinism_checks
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._now = datetime.fromtimestamp(0, timezone.utc)
        self._commands: list[_Command] = []
        self._unmatched: collections.deque[_Command] = collections.deque()
        self._activity_seq = 0
        self._timer_seq = 0
        self._activities_by_id: dict[str, _Activity] = {}
        self._activities_by_event: dict[int, _Activity] = {}
        self._local_activities: dict[str, LocalActivity] = {}
        self._timers: dict[str, _Timer] = {}
        self._children_by_event: dict[int, _Child] = {}
        self._externals_by_event: dict[int, _External] = {}
        self._conditions: list[tuple[Callable[[], bool], asyncio.Future[bool]]] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._main: asyncio.Task[Any] | None = None
        self._closed_by: _Command | None = None
        self._replaying = False
        self._querying = False
        self._patches: dict[str, bool] = {}
        self._lookahead_patches: set[str] = set()
        self._start_args: list[Any] | None = None
        self._handler_errors: list[BaseException] = []
        self._instance: Any = None
        self._info: Info | None = None
        self._cancel_requested = False
        self._running = False
        # What the lenient cases of matching ask of the whole history
        # (docs/protocol.md §14.4): the timers that fired, by id, and the
        # activities that closed, by scheduled event id.
        self._fired_timers: set[str] = set()
        self._closed_activities: set[int] = set()
        # The WorkflowTaskStarted whose activation ran last as the task
        # being answered (0: none, or the instance went on past it).
        self._ended_at = 0
        seed = hashlib.sha256(request["run_id"].encode()).digest()
        self._random = random.Random(int.from_bytes(seed[:8], "big"))

    # --- the driver -------------------------------------------------------------------

    def activate(self) -> list[CommandDict]:
        """Replays the history and runs the final activation; returns its
        commands. Raises NonDeterminismError or WorkflowTaskFailure."""
        try:
            self._replay(query=False)
            return self.commands()
        finally:
            self._teardown()

    def begin(self) -> None:
        """Replays the history and runs the final activation until it is
        blocked; local activities it waits on are then in
        :meth:`pending_local_activities`. Call :meth:`teardown` after."""
        self._replay(query=False)

    def commands(self) -> list[CommandDict]:
        """The answer's commands so far. A cancel whose target closed in the
        history (in this activation too: signals ran first) has nothing to
        cancel; the server would refuse it (§14.4)."""
        return [c.to_wire() for c in self._sendable_commands()]

    def teardown(self) -> None:
        self._teardown()

    def pending_local_activities(self) -> list[LocalActivity]:
        """Local activities whose attempt this task must run (none once the
        run is closing)."""
        if self._closed_by is not None:
            return []
        return [la for la in self._local_activities.values() if la.pending]

    def resolve_local_activity(self, la: LocalActivity, outcome: dict[str, Any]) -> None:
        """Records the outcome of ``la``'s attempts run by this app (the
        marker's details and failure, docs/protocol.md §14.6) and runs the
        workflow until it is blocked again."""
        if not la.pending or la.future.done():
            return
        self._resolve_local(la, outcome)
        self._run_until_blocked()

    # --- inline activities: the session goes on in this instance ---------------------

    def inline_candidates(self, task_queue: str, registered: Container[str]) -> list[str]:
        """The activity ids of this activation's ScheduleActivityTask commands
        that this app may run itself: a type it registers, no other task
        queue, and not opted out."""
        out: list[str] = []
        for c in self._sendable_commands():
            if c.command_type != "ScheduleActivityTask":
                continue
            act = cast(_Activity, c.target)
            queue = c.attributes.get("task_queue")
            if act.inline and act.activity_type in registered and queue in (None, task_queue):
                out.append(act.activity_id)
        return out

    def _sendable_commands(self) -> list[_Command]:
        return [c for c in self._commands if not self._lenient_unmatched(c)]

    def committed(self, events: Sequence[EventDict]) -> None:
        """Takes the events a checkpoint appended for this activation's
        commands into the history, matching each command to its event (as a
        replay would), so that event ids stay exact for the next activation."""
        self._note_closed(events)
        # Past its push's task: no sticky push can follow on from here.
        self._ended_at = 0
        self._unmatched.extend(self._commands)
        self._commands = []
        for i, e in enumerate(events):
            if e["event_type"] in _COMMAND_EVENTS:
                self._match(e, events, i)
        self._expect_all_matched(None)
        if events and self._info is not None:
            self._info = dataclasses.replace(self._info, history_length=events[-1]["event_id"])

    def scheduled_event_id(self, activity_id: str) -> int:
        act = self._activities_by_id.get(activity_id)
        return act.scheduled_event_id if act is not None else 0

    def resume(self, results: Sequence[EventDict], now: datetime) -> None:
        """Runs the next activation in this instance, at ``now`` (the
        ``workflow_time`` of the checkpoint that will carry it), with
        ``results`` applied: ActivityTaskCompleted events as the checkpoint's
        completions will record them."""
        self._now = now
        self._replaying = False
        self._activation(list(results))

    def is_closed_run(self) -> bool:
        return self._closed_by is not None

    # --- sticky pushes: the next task of the run goes on in this instance ----------

    @property
    def definition(self) -> _Definition:
        return self._defn

    @property
    def ended_at(self) -> int:
        """The event id of the WorkflowTaskStarted this instance last ran
        the activation of as the task being answered (0: none, or it went
        on past it in an inline session)."""
        return self._ended_at

    def advance(self, request: WorkflowTaskRequest) -> bool:
        """Takes the run's next workflow task, whose ``history`` holds only
        the events after :attr:`ended_at` (a sticky push, docs/protocol.md
        §5.10), into this instance: the answer's commands are matched
        against the command events that follow its WorkflowTaskCompleted,
        the results become the next activation, and the final one runs
        until blocked, exactly as a replay of the whole history would go on
        from here. False, with nothing applied, when the events do not
        follow on from this instance; raises NonDeterminismError or
        WorkflowTaskFailure as :meth:`begin` does."""
        events = request["history"]
        if (
            not events
            or self._ended_at == 0
            or self._closed_by is not None
            or request["run_id"] != self._request["run_id"]
            or events[0]["event_id"] != self._ended_at + 1
            or events[0]["event_type"] != "WorkflowTaskCompleted"
        ):
            return False
        self._request = cast(WorkflowTaskRequest, {**request, "history": []})
        if self._info is not None:
            self._info = dataclasses.replace(
                self._info,
                history_length=int(request.get("history_length") or events[-1]["event_id"]),
                suggest_continue_as_new=bool(request.get("suggest_continue_as_new")),
            )
        # Where a replay stands after the answered task's WorkflowTaskStarted.
        self._replaying = True
        self._unmatched.extend(self._commands)
        self._commands = []
        self._feed(events, 1, query=False)
        return True

    def _replay(self, *, query: bool) -> None:
        try:
            self._feed(self._history, 0, query=query)
        finally:
            self._history = []

    def _feed(self, events: Sequence[EventDict], start: int, *, query: bool) -> None:
        """Replays ``events[start:]``: the whole history, or the events of a
        sticky push after the answered task's WorkflowTaskCompleted."""
        self._note_closed(events)
        n = len(events)
        pending: list[EventDict] = []
        i = start
        while i < n:
            e = events[i]
            t = e["event_type"]
            if t == "WorkflowTaskStarted":
                nxt = events[i + 1]["event_type"] if i + 1 < n else None
                if nxt in ("WorkflowTaskFailed", "WorkflowTaskTimedOut"):
                    i += 1
                    continue
                self._expect_all_matched(e)
                final = nxt != "WorkflowTaskCompleted"
                self._replaying = not final
                self._now = parse_timestamp(e["event_time"])
                self._lookahead_patches = set() if final else _patch_markers(events, i + 2)
                self._activation(pending)
                pending = []
                if final:
                    self._ended_at = e["event_id"]
                    return
                self._unmatched.extend(self._commands)
                self._commands = []
                i += 2
                continue
            if t in _COMMAND_EVENTS:
                self._match(e, events, i)
            elif t in _RESOLUTION_EVENTS:
                pending.append(e)
            i += 1
        if query:
            # A query sees the state the next workflow task would reach:
            # the results that arrived since the last task are applied in
            # one more activation, whose commands are discarded.
            self._unmatched.clear()
            if pending or self._instance is None:
                self._replaying = False
                if events:
                    self._now = parse_timestamp(events[-1]["event_time"])
                self._activation(pending)
            self._commands = []
            return
        # The history ended without a task to answer (a replay of an
        # exported history): everything produced must be in it.
        self._expect_all_matched(None)

    def _note_closed(self, events: Sequence[EventDict]) -> None:
        for e in events:
            t = e["event_type"]
            if t == "TimerFired":
                self._fired_timers.add(str((e.get("attributes") or {}).get("timer_id")))
            elif t in _ACTIVITY_CLOSED:
                sid = (e.get("attributes") or {}).get("scheduled_event_id")
                if isinstance(sid, int):
                    self._closed_activities.add(sid)

    def answer_query(self, name: str, raw_args: JSON) -> JSON:
        """Replays the whole history, then runs the query handler ``name``
        on the resulting state and returns its encoded result. Raises
        NonDeterminismError or WorkflowTaskFailure (replay failed),
        QueryError (no such handler, bad arguments, an async handler or one
        that issued commands) or whatever the handler raised."""
        self._querying = True  # the logs were written when the tasks ran
        try:
            self._replay(query=True)
            q = self._defn.queries.get(name) or self._defn.queries.get(None)
            if q is None:
                known = sorted(n for n in self._defn.queries if n)
                raise QueryError(
                    f"Query handler for '{name}' expected but not found, "
                    f"known queries: [{' '.join(known)}]"
                )
            if self._instance is None:
                raise QueryError(f"workflow {self._defn.name} has not started; cannot query it")
            try:
                hints = q.arg_types if q.name is not None else q.arg_types[1:]
                args = decode_args(raw_args, hints)
            except (TypeError, ValueError, KeyError) as err:
                raise QueryError(f"cannot decode the arguments of query {name!r}: {err}") from err
            if q.name is None:
                args = [name, *args]
            result = self._run_read_only(q.fn, args, "query handlers")
            return to_json(result)
        finally:
            self._teardown()

    def validate_update(self, name: str, raw_args: JSON) -> None:
        """Replays the whole history, then runs the validator of update
        ``name`` (if it has one) on the resulting state. Raises QueryError
        (no such update, bad arguments, an async validator or one that
        issued commands), whatever the validator raised, or the replay's
        NonDeterminismError or WorkflowTaskFailure."""
        self._querying = True
        try:
            self._replay(query=True)
            u = self._defn.updates.get(name) or self._defn.updates.get(None)
            if u is None:
                known = sorted(n for n in self._defn.updates if n)
                raise QueryError(
                    f"Update handler for '{name}' expected but not found, "
                    f"known updates: [{' '.join(known)}]"
                )
            if self._instance is None:
                raise QueryError(f"workflow {self._defn.name} has not started; cannot update it")
            args = self._update_args(u, name, raw_args)
            if u.validator is not None:
                self._run_read_only(u.validator, args, "update validators")
        finally:
            self._teardown()

    @staticmethod
    def _update_args(u: _UpdateDefinition, name: str, raw_args: JSON) -> list[Any]:
        try:
            hints = u.arg_types if u.name is not None else u.arg_types[1:]
            args = decode_args(raw_args, hints)
        except (TypeError, ValueError, KeyError) as err:
            raise QueryError(f"cannot decode the arguments of update {name!r}: {err}") from err
        return args if u.name is not None else [name, *args]

    def _run_read_only(self, fn: Callable[..., Any], args: list[Any], what: str) -> Any:
        before = len(self._commands)
        prev_loop = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        self._running = True
        previous = _determinism.install() if self._checks else None
        try:
            result = fn(self._instance, *args)
        finally:
            if self._checks:
                _determinism.uninstall(previous)
            self._running = False
            asyncio.events._set_running_loop(prev_loop)
        if inspect.isawaitable(result):
            if inspect.iscoroutine(result):
                result.close()
            raise QueryError(f"{what} must not be async: they cannot wait")
        if len(self._commands) != before or self._ready:
            raise QueryError(f"{what} must not issue commands or start tasks")
        return result

    def _expect_all_matched(self, at: EventDict | None) -> None:
        while self._unmatched:
            c = self._unmatched.popleft()
            if self._lenient_unmatched(c):
                continue
            where = f"event {at['event_id']} ({at['event_type']})" if at else "the end of history"
            raise NonDeterminismError(
                f"workflow code produced {c.describe()} but history has {where} instead "
                f"[workflow {self._request['workflow_id']} of type {self._defn.name}]",
                event_id=at["event_id"] if at else None,
                expected=at["event_type"] if at else "end of history",
                actual=c.describe(),
            )

    def _lenient_unmatched(self, c: _Command) -> bool:
        """A cancel whose target had already closed on the server leaves no
        event (the server drops it), so it may go unmatched."""
        if c.command_type == "CancelTimer":
            timer = self._timers.get(c.attributes["timer_id"])
            return timer is not None and self._timer_closed_in_history(timer)
        if c.command_type == "RequestCancelActivityTask":
            act = self._activities_by_id.get(c.attributes["activity_id"])
            return act is not None and self._activity_closed_in_history(act)
        return False

    def _timer_closed_in_history(self, timer: _Timer) -> bool:
        return timer.timer_id in self._fired_timers

    def _activity_closed_in_history(self, act: _Activity) -> bool:
        return act.scheduled_event_id in self._closed_activities

    def _match(self, e: EventDict, events: Sequence[EventDict], i: int) -> None:
        attrs = e.get("attributes") or {}
        self._replay_local_activity(e)
        while self._unmatched:
            c = self._unmatched[0]
            if _matches(c, e, self):
                self._unmatched.popleft()
                self._on_matched(c, e)
                return
            if self._lenient_unmatched(c):
                self._unmatched.popleft()
                continue
            break
        if (
            e["event_type"] == "MarkerRecorded"
            and attrs.get("marker_name") == PATCH_MARKER_NAME
            and _as_dict(attrs.get("details")).get("deprecated")
        ):
            return  # a deprecated patch whose call was removed
        actual = self._unmatched[0].describe() if self._unmatched else "no command"
        raise NonDeterminismError(
            f"history has {_describe_event(e)} at event {e['event_id']} but workflow code "
            f"produced {actual} [workflow {self._request['workflow_id']} of type {self._defn.name}]",
            event_id=e["event_id"],
            expected=_describe_event(e),
            actual=actual,
        )

    def _replay_local_activity(self, e: EventDict) -> None:
        """A local activity marker with no command before it left to match
        is the outcome the waiting local activity got when this task ran:
        it resolves it, and the workflow runs on as it did then (its
        commands follow the marker)."""
        attrs = e.get("attributes") or {}
        if e["event_type"] != "MarkerRecorded" or attrs.get("marker_name") != (
            LOCAL_ACTIVITY_MARKER_NAME
        ):
            return
        if any(not self._lenient_unmatched(c) for c in self._unmatched):
            return
        details = _as_dict(attrs.get("details"))
        la = self._local_activities.get(str(details.get("activity_id")))
        if la is None or not la.pending or details.get("activity_type") != la.activity_type:
            return
        outcome = dict(details)
        if attrs.get("failure") is not None:
            outcome["failure"] = attrs["failure"]
        self._resolve_local(la, outcome)
        self._run_until_blocked()
        self._unmatched.extend(self._commands)
        self._commands = []

    def _resolve_local(self, la: LocalActivity, outcome: dict[str, Any]) -> None:
        """Appends ``la``'s marker, then resolves it: a result, a failure for
        good, or a back-off on a durable timer before the next attempt."""
        la.pending = False
        details: dict[str, Any] = {
            "activity_id": la.activity_id,
            "activity_type": la.activity_type,
            "attempt": int(outcome.get("attempt") or la.attempt),
        }
        for key in ("original_schedule_time", "complete_time", "backoff", "retry_state"):
            if outcome.get(key) is not None:
                details[key] = outcome[key]
        failure = outcome.get("failure")
        if failure is None:
            details["result"] = outcome.get("result")
        attrs: dict[str, Any] = {"marker_name": LOCAL_ACTIVITY_MARKER_NAME, "details": details}
        if failure is not None:
            attrs["failure"] = failure
        self._commands.append(_Command("RecordMarker", attrs, la))
        la.original_schedule_time = details.get("original_schedule_time")
        if failure is None:
            try:
                la.future.set_result(from_json(details["result"], la.result_type))
            except (TypeError, ValueError, KeyError) as err:
                la.future.set_exception(err)
            return
        backoff = details.get("backoff")
        if isinstance(backoff, str):
            la.attempt = details["attempt"] + 1

            def retry() -> None:
                la.backoff = None
                la.pending = True

            la.backoff = self.call_later(parse_duration(backoff).total_seconds(), retry)
            return
        la.future.set_exception(self._local_activity_error(la, failure_to_error(failure), details))

    def _local_activity_error(
        self, la: LocalActivity, cause: BaseException, details: dict[str, Any]
    ) -> ActivityError:
        rs = details.get("retry_state")
        err = ActivityError(
            "Local activity failed",
            scheduled_event_id=0,
            started_event_id=0,
            identity="",
            activity_type=la.activity_type,
            activity_id=la.activity_id,
            retry_state=RetryState(rs) if rs in RetryState.__members__ else None,
        )
        err.__cause__ = cause
        return err

    def _cancel_local_activity(self, la: LocalActivity) -> None:
        """TRY_CANCEL: the local activity resolves as cancelled at once, with
        a marker saying so (so a replay resolves it the same way); the
        driver stops a running attempt."""
        if la.future.done():
            return
        if la.backoff is not None:
            la.backoff.cancel()
            la.backoff = None
        la.pending = False
        failure: FailureDict = {
            "message": "Local activity cancelled",
            "type": "CancelledError",
            "kind": "CANCELED",
        }
        details: dict[str, Any] = {
            "activity_id": la.activity_id,
            "activity_type": la.activity_type,
            "attempt": la.attempt,
            "retry_state": RetryState.CANCEL_REQUESTED.value,
        }
        self._commands.append(
            _Command(
                "RecordMarker",
                {"marker_name": LOCAL_ACTIVITY_MARKER_NAME, "details": details, "failure": failure},
                la,
            )
        )
        la.future.set_exception(
            self._local_activity_error(la, CancelledError("Local activity cancelled"), details)
        )

    def _on_matched(self, c: _Command, e: EventDict) -> None:
        if c.command_type == "ScheduleActivityTask":
            act = cast(_Activity, c.target)
            act.scheduled_event_id = e["event_id"]
            self._activities_by_event[e["event_id"]] = act
        elif c.command_type == "StartTimer":
            cast(_Timer, c.target).started_event_id = e["event_id"]
        elif c.command_type == "StartChildWorkflowExecution":
            child = cast(_Child, c.target)
            child.initiated_event_id = e["event_id"]
            self._children_by_event[e["event_id"]] = child
        elif isinstance(c.target, _External):
            self._externals_by_event[e["event_id"]] = c.target

    def _activation(self, jobs: list[EventDict]) -> None:
        """Runs one activation, as Temporal's SDK orders its jobs: the start
        and the signals first (handlers run, in history order, until
        everything is blocked, with conditions checked), then the main
        coroutine is started and the other results (activities, timers, a
        cancellation request) are applied and the loop runs again."""
        first = [e for e in jobs if e["event_type"] in _FIRST_JOBS]
        for job in first:
            self._apply(job)
        if self._start_args is not None and self._main is None and self._closed_by is None:
            args = self._start_args

            async def main() -> Any:
                return await self._defn.run_fn(self._instance, *args)

            # After the handlers' tasks: they run first, then the main
            # coroutine starts, before any other job (a cancellation) applies.
            self._main = self.create_task(main(), name=f"workflow:{self._defn.name}")
        if first:
            self._run_until_blocked()
        for job in jobs:
            if job["event_type"] not in _FIRST_JOBS:
                self._apply(job)
        self._run_until_blocked()

    def _apply(self, e: EventDict) -> None:
        t = e["event_type"]
        a = e.get("attributes") or {}
        if t == "WorkflowExecutionStarted":
            self._start(e)
        elif t == "TimerFired":
            timer = self._timers.get(a.get("timer_id", ""))
            if timer is not None and not timer.fired:
                timer.fired = True
                if not timer.handle.cancelled():
                    self._ready.append(timer.handle)
        elif t.startswith("ActivityTask"):
            act = self._activities_by_event.get(int(a.get("scheduled_event_id", 0)))
            if act is None or act.future.done():
                return
            self._resolve_activity(act, t, a)
        elif t in _CHILD_EVENTS:
            child = self._children_by_event.get(int(a.get("initiated_event_id", 0)))
            if child is not None:
                self._resolve_child(child, t, a)
        elif t in _EXTERNAL_EVENTS:
            ext = self._externals_by_event.get(int(a.get("initiated_event_id", 0)))
            if ext is not None and not ext.done.done():
                if t.endswith("Failed"):
                    verb = "signal" if t.startswith("Signal") else "cancel"
                    ext.done.set_exception(
                        ApplicationError(
                            f"Unable to {verb} external workflow because it was not found",
                            type=str(a.get("cause") or "ExternalWorkflowExecutionNotFound"),
                            non_retryable=True,
                        )
                    )
                else:
                    ext.done.set_result(None)
        elif t == "WorkflowExecutionSignaled":
            self._signal(str(a.get("signal_name", "")), a.get("input"))
        elif t == "WorkflowExecutionUpdateAdmitted":
            self._update(str(a.get("update_id", "")), str(a.get("update_name", "")), a.get("input"))
        elif t == "WorkflowExecutionCancelRequested":
            self._cancel_requested = True
            if self._main is not None:
                self._main.cancel()

    def _resolve_activity(self, act: _Activity, t: str, a: dict[str, Any]) -> None:
        if t == "ActivityTaskCompleted":
            try:
                act.future.set_result(from_json(a.get("result"), act.result_type))
            except (TypeError, ValueError, KeyError) as err:
                act.future.set_exception(err)
            return

        def error(message: str, cause: BaseException, retry_state: Any) -> ActivityError:
            rs = RetryState(retry_state) if retry_state in RetryState.__members__ else None
            err = ActivityError(
                message,
                scheduled_event_id=act.scheduled_event_id,
                started_event_id=int(a.get("started_event_id") or 0),
                identity="",
                activity_type=act.activity_type,
                activity_id=act.activity_id,
                retry_state=rs,
            )
            err.__cause__ = cause
            return err

        if t == "ActivityTaskFailed":
            cause = failure_to_error(a.get("failure") or {})
            act.future.set_exception(error("Activity task failed", cause, a.get("retry_state")))
        elif t == "ActivityTaskTimedOut":
            cause = failure_to_error(
                a.get("failure") or {"message": "timeout", "type": "TimeoutError"}
            )
            act.future.set_exception(error("Activity task timed out", cause, a.get("retry_state")))
        elif t == "ActivityTaskCanceled":
            details = a.get("details")
            cause = CancelledError(
                "Activity cancelled",
                *(details if isinstance(details, list) else [] if details is None else [details]),
            )
            act.future.set_exception(
                error("Activity cancelled", cause, RetryState.CANCEL_REQUESTED.value)
            )

    def _resolve_child(self, child: _Child, t: str, a: dict[str, Any]) -> None:
        if t == "StartChildWorkflowExecutionFailed":
            if not child.started.done():
                child.started.set_exception(
                    WorkflowAlreadyStartedError(child.workflow_id, child.workflow_type)
                )
            return
        execution = _as_dict(a.get("workflow_execution"))
        if t == "ChildWorkflowExecutionStarted":
            child.run_id = str(execution.get("run_id") or "")
            if not child.started.done():
                child.started.set_result(self._child_handle(child))
            return
        if child.result.done():
            return
        if t == "ChildWorkflowExecutionCompleted":
            try:
                child.result.set_result(from_json(a.get("result"), child.result_type))
            except (TypeError, ValueError, KeyError) as err:
                child.result.set_exception(err)
            return
        cause: BaseException
        if t == "ChildWorkflowExecutionFailed":
            message, cause = (
                "Child Workflow execution failed",
                failure_to_error(a.get("failure") or {}),
            )
        elif t == "ChildWorkflowExecutionCanceled":
            details = a.get("details")
            message = "Child Workflow execution cancelled"
            cause = CancelledError(
                "Workflow cancelled",
                *(details if isinstance(details, list) else [] if details is None else [details]),
            )
        elif t == "ChildWorkflowExecutionTimedOut":
            message = "Child Workflow execution timed out"
            cause = TimeoutError("Workflow timed out", type=TimeoutType.START_TO_CLOSE)
        else:
            message = "Child Workflow execution terminated"
            cause = TerminatedError("Workflow terminated")
        retry_state = a.get("retry_state")
        err = ChildWorkflowError(
            message,
            namespace=self._request["namespace"],
            workflow_id=child.workflow_id,
            run_id=str(execution.get("run_id") or child.run_id),
            workflow_type=child.workflow_type,
            retry_state=RetryState(retry_state) if retry_state in RetryState.__members__ else None,
        )
        err.__cause__ = cause
        child.result.set_exception(err)

    def _child_handle(self, child: _Child) -> ChildWorkflowHandle[Any]:
        async def run() -> Any:
            handle._baton_started = True
            while True:
                try:
                    return await asyncio.shield(child.result)
                except asyncio.CancelledError:
                    if child.result.done():
                        raise
                    requested = self._cancel_child(child)
                    kind = child.cancellation_type
                    if kind == ChildWorkflowCancellationType.WAIT_CANCELLATION_REQUESTED:
                        if requested is not None:
                            await asyncio.shield(requested)
                        raise
                    if kind != ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED:
                        raise

        handle = ChildWorkflowHandle(run(), loop=self, name=f"child:{child.workflow_id}")
        handle.id = child.workflow_id
        handle.first_execution_run_id = child.run_id
        handle._baton_cancel = lambda: (self._cancel_child(child), None)[1]
        self._tasks.append(handle)
        return handle

    def _cancel_child(self, child: _Child) -> asyncio.Future[None] | None:
        """Asks the child to cancel (RequestCancelExternalWorkflowExecution
        limited to this run's children) unless its cancellation type is
        ABANDON; returns the request's future."""
        if child.cancel is not None:
            return child.cancel
        if child.cancellation_type == ChildWorkflowCancellationType.ABANDON:
            return None
        child.cancel = self.workflow_external(
            "RequestCancelExternalWorkflowExecution",
            {"workflow_id": child.workflow_id, "child_workflow_only": True},
        )
        return child.cancel

    def _start(self, e: EventDict) -> None:
        a = e.get("attributes") or {}
        req = self._request

        def dur(key: str) -> timedelta | None:
            v = a.get(key)
            return parse_duration(v) if isinstance(v, str) else None

        self._info = Info(
            namespace=req["namespace"],
            workflow_id=req["workflow_id"],
            run_id=req["run_id"],
            workflow_type=req["workflow_type"],
            task_queue=req["task_queue"],
            attempt=int(a.get("attempt") or 1),
            start_time=parse_timestamp(e["event_time"]),
            execution_timeout=dur("workflow_execution_timeout"),
            run_timeout=dur("workflow_run_timeout"),
            task_timeout=dur("workflow_task_timeout") or timedelta(seconds=10),
            history_length=int(req.get("history_length") or len(self._history)),
            suggest_continue_as_new=bool(req.get("suggest_continue_as_new")),
            continued_run_id=a.get("continued_execution_run_id"),
            first_execution_run_id=a.get("first_execution_run_id") or req["run_id"],
            retry_policy=RetryPolicy.from_wire(_as_dict(a["retry_policy"]))
            if a.get("retry_policy")
            else None,
            raw_memo=_as_dict(a.get("memo")),
            typed_search_attributes=TypedSearchAttributes.from_wire(
                _as_dict(a.get("search_attributes"))
            ),
            parent=ParentInfo(
                namespace=req["namespace"],
                run_id=str(parent.get("run_id", "")),
                workflow_id=str(parent.get("workflow_id", "")),
            )
            if (parent := _as_dict(a.get("parent")))
            else None,
        )
        try:
            self._start_args = decode_args(a.get("input"), self._defn.arg_types)
        except (TypeError, ValueError, KeyError) as err:
            raise WorkflowTaskFailure(
                TypeError(f"cannot decode the input of workflow {self._defn.name}: {err}")
            ) from err

    def _instantiate(self) -> None:
        """Creates the workflow object (on the loop, under the determinism
        checks) before any signal handler or the run method runs."""
        previous = _determinism.install() if self._checks else None
        try:
            self._instance = self._defn.cls()
        except BaseException as err:
            self._close_for_error(err)
        finally:
            if self._checks:
                _determinism.uninstall(previous)

    def _signal(self, name: str, raw: JSON) -> None:
        """Starts the handler of one WorkflowExecutionSignaled as a task (as
        Temporal runs handlers); signals without a handler are logged and
        dropped (there is no ``set_signal_handler`` to buffer them for)."""
        sig = self._defn.signals.get(name) or self._defn.signals.get(None)
        if sig is None:
            if not self._replaying and not self._querying:
                log.warning(
                    "signal %r has no handler in workflow %s; dropped", name, self._defn.name
                )
            return
        try:
            # A dynamic handler's first parameter is the name, not input.
            args = decode_args(raw, sig.arg_types if sig.name is not None else sig.arg_types[1:])
        except (TypeError, ValueError, KeyError) as err:
            if not self._replaying and not self._querying:
                log.warning(
                    "cannot decode the input of signal %r in workflow %s: %s; dropped",
                    name,
                    self._defn.name,
                    err,
                )
            return
        if sig.name is None:
            args = [name, *args]

        async def handle() -> None:
            if self._instance is None:
                return  # the workflow object could not be created
            result = sig.fn(self._instance, *args)
            if inspect.isawaitable(result):
                await result

        task = self.create_task(handle(), name=f"signal:{name}")
        task.add_done_callback(self._handler_done)

    def _update(self, update_id: str, name: str, raw: JSON) -> None:
        """Starts the handler of one admitted update as a task; when it
        returns, CompleteWorkflowUpdate carries its result. An
        :class:`ApplicationError` (any failure error) it raises is the
        update's failure; any other error fails the workflow task, as in
        Temporal. No validator runs here: it ran before the server admitted
        the update."""

        def complete(attributes: dict[str, Any]) -> None:
            self._commands.append(
                _Command("CompleteWorkflowUpdate", {"update_id": update_id, **attributes})
            )

        u = self._defn.updates.get(name) or self._defn.updates.get(None)
        try:
            if u is None:
                raise QueryError(f"update {name!r} has no handler in workflow {self._defn.name}")
            args = self._update_args(u, name, raw)
        except QueryError as err:
            complete({"failure": error_to_failure(err, include_stack=False)})
            return

        async def handle() -> None:
            if self._instance is None:
                return  # the workflow object could not be created
            try:
                result = u.fn(self._instance, *args)
                if inspect.isawaitable(result):
                    result = await result
            except FailureError as err:
                complete({"failure": error_to_failure(err)})
                return
            complete({"result": to_json(result)})

        task = self.create_task(handle(), name=f"update:{name}:{update_id}")
        task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._handler_errors.append(cast(BaseException, task.exception()))

    # --- running -----------------------------------------------------------------

    def _run_until_blocked(self) -> None:
        prev_loop = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        self._running = True
        try:
            if self._instance is None and self._start_args is not None and not self._closed_by:
                self._instantiate()
            while True:
                while self._ready and self._closed_by is None:
                    handle = self._ready.popleft()
                    if handle.cancelled():
                        continue
                    self._run_handle(handle)
                    self._check_main()
                if self._closed_by is not None:
                    return
                if not self._check_conditions():
                    return
        finally:
            self._running = False
            asyncio.events._set_running_loop(prev_loop)

    def _run_handle(self, handle: asyncio.Handle) -> None:
        if not self._checks:
            handle._run()
            return
        previous = _determinism.install()
        try:
            handle._run()
        finally:
            _determinism.uninstall(previous)

    def _check_conditions(self) -> bool:
        """Resolves the first waiting condition that now holds."""
        for idx, (fn, fut) in enumerate(self._conditions):
            if fut.done():
                continue
            previous = _determinism.install() if self._checks else None
            try:
                ok = fn()
            except BaseException as err:
                ok = False
                fut.set_exception(err)
            finally:
                if self._checks:
                    _determinism.uninstall(previous)
            if ok:
                fut.set_result(True)
            if fut.done():
                del self._conditions[idx]
                return True
        self._conditions = [(f, fu) for f, fu in self._conditions if not fu.done()]
        return False

    def _check_main(self) -> None:
        if self._handler_errors and self._closed_by is None:
            self._close_for_error(self._handler_errors.pop(0))
            return
        main = self._main
        if main is None or not main.done() or self._closed_by is not None:
            return
        if main.cancelled():
            if self._cancel_requested:
                self._close(_Command("CancelWorkflowExecution", {}))
                return
            raise WorkflowTaskFailure(asyncio.CancelledError("workflow task was cancelled"))
        err = main.exception()
        if err is None:
            result = main.result()
            try:
                encoded = to_json(result)
            except TypeError as e:
                raise WorkflowTaskFailure(e) from e
            self._close(_Command("CompleteWorkflowExecution", {"result": encoded}))
            return
        self._close_for_error(err)

    def _close_for_error(self, err: BaseException) -> None:
        """Closes the run for an error of the workflow (or a signal
        handler): cancelled after a cancellation request, failed for a
        failure error, else fails the workflow task."""
        if self._cancel_requested and _is_cancellation(err):
            self._close(_Command("CancelWorkflowExecution", {}))
            return
        if isinstance(err, NonDeterminismError):
            raise err
        if isinstance(err, ContinueAsNewError):
            self._close(_Command("ContinueAsNewWorkflowExecution", err.attributes))
            return
        if isinstance(err, (FailureError, *self._defn.failure_exception_types)):
            failure: FailureDict = error_to_failure(err)
            self._close(_Command("FailWorkflowExecution", {"failure": failure}))
            return
        raise WorkflowTaskFailure(err)

    def _close(self, c: _Command) -> None:
        self._closed_by = c
        self._commands.append(c)

    def _teardown(self) -> None:
        """Cancels what is still running so coroutines do not finish later,
        at garbage collection, outside their loop. Commands are dropped."""
        pending = [t for t in self._tasks if not t.done()]
        if not pending:
            return
        prev_loop = asyncio.events._get_running_loop()
        asyncio.events._set_running_loop(self)
        self._running = True
        try:
            for t in pending:
                t.cancel()
            steps = 0
            while self._ready and steps < _TEARDOWN_STEPS:
                steps += 1
                h = self._ready.popleft()
                if not h.cancelled():
                    try:
                        h._run()
                    except BaseException:
                        pass
        finally:
            self._running = False
            self._ready.clear()
            self._tasks.clear()
            asyncio.events._set_running_loop(prev_loop)

    # --- the runtime API used by baton.workflow ------------------------------------------

    def workflow_info(self) -> Info:
        if self._info is None:
            raise RuntimeError("workflow info is not available before the workflow starts")
        return self._info

    def workflow_now(self) -> datetime:
        return self._now

    def workflow_random(self) -> random.Random:
        return self._random

    def workflow_is_replaying(self) -> bool:
        return self._replaying

    def workflow_upsert_search_attributes(
        self, updates: Sequence[SearchAttributeUpdate[Any]]
    ) -> None:
        if not updates:
            raise ValueError("upsert_search_attributes needs at least one update")
        attributes = {u.key.name: u.key.to_wire(u.value) for u in updates}
        self._commands.append(
            _Command("UpsertWorkflowSearchAttributes", {"search_attributes": attributes})
        )
        info = self.workflow_info()
        self._info = dataclasses.replace(
            info, typed_search_attributes=info.typed_search_attributes.updated(*updates)
        )

    def workflow_patch(self, patch_id: str, *, deprecated: bool) -> bool:
        if patch_id in self._patches:
            return self._patches[patch_id]
        present = (not self._replaying) or patch_id in self._lookahead_patches
        if present:
            self._commands.append(
                _Command(
                    "RecordMarker",
                    {
                        "marker_name": PATCH_MARKER_NAME,
                        "details": {"patch_id": patch_id, "deprecated": deprecated},
                    },
                )
            )
        # A deprecated patch is always taken, marker or not.
        result = present or deprecated
        self._patches[patch_id] = result
        return result

    def workflow_wait_condition(self, fn: Callable[[], bool]) -> asyncio.Future[bool]:
        fut: asyncio.Future[bool] = self.create_future()
        self._conditions.append((fn, fut))
        return fut

    def workflow_start_child(
        self,
        attributes: dict[str, Any],
        *,
        cancellation_type: ChildWorkflowCancellationType,
        result_type: Any,
    ) -> asyncio.Future[ChildWorkflowHandle[Any]]:
        child = _Child(
            attributes, result_type, cancellation_type, self.create_future(), self.create_future()
        )
        self._commands.append(child.command)

        def abandoned(fut: asyncio.Future[ChildWorkflowHandle[Any]]) -> None:
            # Cancelled before the start was sent: never send it.
            if fut.cancelled() and child.command in self._commands:
                self._commands.remove(child.command)

        child.started.add_done_callback(abandoned)
        return child.started

    def workflow_external(
        self, command_type: str, attributes: dict[str, Any]
    ) -> asyncio.Future[None]:
        done: asyncio.Future[None] = self.create_future()
        command = _Command(command_type, attributes)
        command.target = _External(command, done)
        self._commands.append(command)
        return done

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
        name, ret = _activity_name(activity)
        aid = self._next_activity_id(activity_id)
        attrs: dict[str, Any] = {
            "activity_id": aid,
            "activity_type": name,
            "input": encode_args(args),
        }
        if task_queue:
            attrs["task_queue"] = task_queue
        for key, value in (
            ("schedule_to_close_timeout", schedule_to_close_timeout),
            ("schedule_to_start_timeout", schedule_to_start_timeout),
            ("start_to_close_timeout", start_to_close_timeout),
            ("heartbeat_timeout", heartbeat_timeout),
        ):
            if value is not None:
                attrs[key] = format_duration(value)
        if retry_policy is not None:
            attrs["retry_policy"] = retry_policy.to_wire()
        act = _Activity(
            aid,
            name,
            result_type if result_type is not None else ret,
            cancellation_type,
            self.create_future(),
        )
        act.inline = inline
        act.command = _Command("ScheduleActivityTask", attrs, act)
        self._activities_by_id[aid] = act
        self._commands.append(act.command)
        return self._activity_handle(
            act.future, lambda: self._cancel_activity(act), aid, f"activity:{name}:{aid}"
        )

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
        name, ret = _activity_name(activity)
        aid = self._next_activity_id(activity_id)
        la = LocalActivity(
            aid,
            name,
            encode_args(args),
            start_to_close_timeout=start_to_close_timeout,
            schedule_to_close_timeout=schedule_to_close_timeout,
            retry_policy=retry_policy or RetryPolicy(),
            local_retry_threshold=local_retry_threshold,
            result_type=result_type if result_type is not None else ret,
            future=self.create_future(),
        )
        self._local_activities[aid] = la
        return self._activity_handle(
            la.future, lambda: self._cancel_local_activity(la), aid, f"local_activity:{name}:{aid}"
        )

    def _next_activity_id(self, activity_id: str | None) -> str:
        """The given id, else the next of the sequence that activities and
        local activities share (as Temporal's SDK numbers both)."""
        self._activity_seq += 1
        aid = activity_id or str(self._activity_seq)
        if aid in self._activities_by_id or aid in self._local_activities:
            raise ValueError(f"activity id {aid!r} is already in use in this workflow")
        return aid

    def _activity_handle(
        self, future: asyncio.Future[Any], cancel: Callable[[], None], aid: str, name: str
    ) -> ActivityHandle[Any]:
        """The handle of an activity or local activity: it waits on
        ``future``, and cancelling it (or the task awaiting it) calls
        ``cancel``, which resolves ``future`` as the cancellation type says."""

        async def run() -> Any:
            handle._baton_started = True
            while True:
                try:
                    return await asyncio.shield(future)
                except asyncio.CancelledError:
                    if future.done():
                        raise
                    cancel()

        handle = ActivityHandle(run(), loop=self, name=name)
        handle.activity_id = aid
        handle._baton_cancel = cancel
        self._tasks.append(handle)
        return handle

    def _cancel_activity(self, act: _Activity) -> None:
        if act.cancel_requested:
            return
        act.cancel_requested = True
        cancelled = ActivityError(
            "Activity cancelled",
            scheduled_event_id=act.scheduled_event_id,
            started_event_id=0,
            identity="",
            activity_type=act.activity_type,
            activity_id=act.activity_id,
            retry_state=RetryState.CANCEL_REQUESTED,
        )
        cancelled.__cause__ = CancelledError("Activity cancelled")
        if act.command is not None and act.command in self._commands:
            # Never sent: drop the command, as if it had not been made.
            self._commands.remove(act.command)
            act.future.set_exception(cancelled)
            return
        if act.cancellation_type != ActivityCancellationType.ABANDON:
            self._commands.append(
                _Command("RequestCancelActivityTask", {"activity_id": act.activity_id}, act)
            )
        if act.cancellation_type != ActivityCancellationType.WAIT_CANCELLATION_COMPLETED:
            act.future.set_exception(cancelled)

    # --- asyncio.AbstractEventLoop ------------------------------------------------------

    def time(self) -> float:
        return self._now.timestamp()

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_soon_threadsafe(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        raise RuntimeError("workflow code cannot receive callbacks from other threads")

    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        if delay < 0:
            raise ValueError("a workflow timer cannot have a negative delay")
        handle = _TimerHandle(self.time() + delay, callback, args, self, context)
        if delay == 0:
            self._ready.append(handle)
            return handle
        self._timer_seq += 1
        timer = _Timer(str(self._timer_seq), handle)
        timer.command = _Command(
            "StartTimer",
            {"timer_id": timer.timer_id, "start_to_fire_timeout": format_duration(delay)},
            timer,
        )
        self._timers[timer.timer_id] = timer
        self._commands.append(timer.command)
        handle._scheduled = True  # type: ignore[attr-defined]  # so cancel() tells us
        handle.baton_timer = timer
        return handle

    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        return self.call_later(max(0.0, when - self.time()), callback, *args, context=context)

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        timer = handle.baton_timer if isinstance(handle, _TimerHandle) else None
        if timer is None or timer.fired:
            return
        if timer.command is not None and timer.command in self._commands:
            self._commands.remove(timer.command)
            return
        if self._closed_by is None:
            self._commands.append(_Command("CancelTimer", {"timer_id": timer.timer_id}, timer))

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(
        self, coro: Any, *, name: str | None = None, context: contextvars.Context | None = None
    ) -> asyncio.Task[Any]:
        if context is not None and sys.version_info >= (3, 11):
            task: asyncio.Task[Any] = asyncio.Task(coro, loop=self, name=name, context=context)
        else:
            task = asyncio.Task(coro, loop=self, name=name)
        self._tasks.append(task)
        return task

    def get_debug(self) -> bool:
        return False

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return False

    def get_exception_handler(self) -> None:
        return None

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        log.debug(
            "unhandled error in workflow %s: %s",
            self._defn.name,
            context.get("message"),
            exc_info=exc,
        )

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.call_exception_handler(context)

    def get_task_factory(self) -> None:
        return None


def _activity_name(activity: Any) -> tuple[str, Any]:
    """The activity type of an ``@activity.defn`` function or a name, and
    its result type hint."""
    if isinstance(activity, str):
        return activity, None
    defn = getattr(activity, "__baton_activity_definition__", None)
    name = getattr(defn, "name", None) or getattr(activity, "__name__", None)
    if not name:
        raise TypeError(f"{activity!r} is not an activity")
    # The definition already resolved the hints (resolving them per call
    # is a large part of a short replay).
    return name, defn.ret_type if defn is not None else type_hints_of(activity)[1]


def _is_cancellation(err: BaseException) -> bool:
    """asyncio's cancellation, Baton's CancelledError, or an activity or a
    child workflow that ended because it was cancelled (Temporal's
    ``is_cancelled_exception``)."""
    if isinstance(err, (asyncio.CancelledError, CancelledError)):
        return True
    return isinstance(err, (ActivityError, ChildWorkflowError)) and isinstance(
        err.cause, CancelledError
    )


def _as_dict(value: Any) -> dict[str, Any]:
    return cast("dict[str, Any]", value) if isinstance(value, dict) else {}


def _matches(c: _Command, e: EventDict, inst: WorkflowInstance) -> bool:
    a = e.get("attributes") or {}
    t = e["event_type"]
    ca = c.attributes
    if c.command_type == "ScheduleActivityTask":
        return (
            t == "ActivityTaskScheduled"
            and a.get("activity_id") == ca["activity_id"]
            and a.get("activity_type") == ca["activity_type"]
        )
    if c.command_type == "StartTimer":
        return t == "TimerStarted" and a.get("timer_id") == ca["timer_id"]
    if c.command_type == "CancelTimer":
        return t == "TimerCanceled" and a.get("timer_id") == ca["timer_id"]
    if c.command_type == "RequestCancelActivityTask":
        act = inst._activities_by_id.get(ca["activity_id"])
        return (
            t == "ActivityTaskCancelRequested"
            and act is not None
            and a.get("scheduled_event_id") == act.scheduled_event_id
        )
    if c.command_type == "CompleteWorkflowUpdate":
        return t == "WorkflowExecutionUpdateCompleted" and a.get("update_id") == ca["update_id"]
    if c.command_type == "StartChildWorkflowExecution":
        return (
            t == "StartChildWorkflowExecutionInitiated"
            and a.get("workflow_id") == ca["workflow_id"]
            and a.get("workflow_type") == ca["workflow_type"]
        )
    if c.command_type in (
        "SignalExternalWorkflowExecution",
        "RequestCancelExternalWorkflowExecution",
    ):
        target = _as_dict(a.get("workflow_execution")).get("workflow_id")
        return (
            t == f"{c.command_type}Initiated"
            and target == ca["workflow_id"]
            and a.get("signal_name") == ca.get("signal_name")
        )
    if c.command_type == "UpsertWorkflowSearchAttributes":
        # The same attributes, by name (the event's values are typed).
        return t == "UpsertWorkflowSearchAttributes" and set(
            _as_dict(a.get("search_attributes"))
        ) == set(_as_dict(ca.get("search_attributes")))
    if c.command_type == "RecordMarker":
        if t != "MarkerRecorded" or a.get("marker_name") != ca["marker_name"]:
            return False
        details = _as_dict(a.get("details"))
        if ca["marker_name"] == PATCH_MARKER_NAME:
            return bool(details) and details.get("patch_id") == ca["details"]["patch_id"]
        if ca["marker_name"] == LOCAL_ACTIVITY_MARKER_NAME:
            return (
                details.get("activity_id") == ca["details"]["activity_id"]
                and details.get("activity_type") == ca["details"]["activity_type"]
            )
        return True
    closing = _CLOSING.get(c.command_type)
    return closing is not None and t == closing


def _patch_markers(events: Sequence[EventDict], start: int) -> set[str]:
    """Patch ids recorded by the workflow task whose command events begin at ``start``."""
    out: set[str] = set()
    for idx in range(start, len(events)):
        e = events[idx]
        t = e["event_type"]
        if t == "WorkflowTaskStarted":
            break
        if t == "MarkerRecorded":
            a = e.get("attributes") or {}
            details = _as_dict(a.get("details"))
            if a.get("marker_name") == PATCH_MARKER_NAME:
                pid = details.get("patch_id")
                if isinstance(pid, str):
                    out.add(pid)
    return out


def handle_workflow_task(
    definition: _Definition | None,
    request: WorkflowTaskRequest,
    *,
    determinism_checks: bool = True,
) -> dict[str, Any]:
    """The answer to one workflow task push: ``{"commands": [...]}`` or
    ``{"failure": {"cause": ..., "failure": {...}}}``."""
    if definition is None:
        err = LookupError(
            f"workflow type {request['workflow_type']!r} is not registered with this app"
        )
        return _task_failure("WORKFLOW_WORKER_UNHANDLED_FAILURE", err)
    instance = WorkflowInstance(definition, request, determinism_checks=determinism_checks)
    try:
        return {"commands": instance.activate()}
    except NonDeterminismError as err:
        return _task_failure("NON_DETERMINISTIC_ERROR", err)
    except WorkflowTaskFailure as err:
        log.warning(
            "workflow task failed: workflow %s (%s): %r",
            request["workflow_id"],
            definition.name,
            err.cause,
            exc_info=err.cause,
        )
        return _task_failure("WORKFLOW_WORKER_UNHANDLED_FAILURE", err.cause)


def _task_failure(cause: str, err: BaseException) -> dict[str, Any]:
    failure = error_to_failure(err)
    if isinstance(err, NonDeterminismError):
        failure["type"] = "NonDeterminismError"
    return {"failure": {"cause": cause, "failure": failure}}


def handle_query(
    definition: _Definition | None,
    request: Any,
    *,
    determinism_checks: bool = True,
) -> dict[str, Any]:
    """The answer to one query push: ``{"result": ...}`` or ``{"failure": {...}}``."""
    if definition is None:
        err: BaseException = LookupError(
            f"workflow type {request['workflow_type']!r} is not registered with this app"
        )
        return {"failure": error_to_failure(err, include_stack=False)}
    name = str(request["query_name"])
    instance = WorkflowInstance(
        definition, cast(WorkflowTaskRequest, request), determinism_checks=determinism_checks
    )
    try:
        return {"result": instance.answer_query(name, request.get("query_args"))}
    except WorkflowTaskFailure as wrapped:
        err = wrapped.cause
    except Exception as e:  # a raising handler is the query's failure
        err = e
    if not isinstance(err, QueryError):
        log.info(
            "query %r failed: workflow %s (%s): %r",
            name,
            request["workflow_id"],
            definition.name,
            err,
        )
    failure = error_to_failure(err, include_stack=False)
    if isinstance(err, NonDeterminismError):
        failure["type"] = "NonDeterminismError"
    return {"failure": failure}


def handle_update_validation(
    definition: _Definition | None,
    request: Any,
    *,
    determinism_checks: bool = True,
) -> dict[str, Any]:
    """The answer to one update validation push: ``{"accepted": true}`` or
    ``{"failure": {...}}`` (unknown update, bad arguments, a validator that
    raised: the update is rejected and leaves no history)."""
    if definition is None:
        err: BaseException = LookupError(
            f"workflow type {request['workflow_type']!r} is not registered with this app"
        )
        return {"failure": error_to_failure(err, include_stack=False)}
    name = str(request["update_name"])
    instance = WorkflowInstance(
        definition, cast(WorkflowTaskRequest, request), determinism_checks=determinism_checks
    )
    try:
        instance.validate_update(name, request.get("update_args"))
        return {"accepted": True}
    except WorkflowTaskFailure as wrapped:
        err = wrapped.cause
    except Exception as e:  # a raising validator rejects the update
        err = e
    failure = error_to_failure(err, include_stack=False)
    if isinstance(err, NonDeterminismError):
        failure["type"] = "NonDeterminismError"
    return {"failure": failure}
