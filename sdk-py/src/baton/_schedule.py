"""Schedules (as ``temporalio.client``'s): the types a schedule is written
with (:class:`Schedule`, :class:`ScheduleSpec`, :class:`SchedulePolicy`,
:class:`ScheduleState`, …), what describe and list return, and
:class:`ScheduleHandle`. Re-exported by :mod:`baton.client`, whose
``Client.create_schedule``, ``get_schedule_handle`` and ``list_schedules``
return them. Each type converts itself to and from the REST API's JSON
(``/api/v1/namespaces/{ns}/schedules…``, see ``openapi/openapi.yaml``).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlencode

from baton._protocol import format_duration, format_timestamp, parse_duration, parse_timestamp
from baton.common import RetryPolicy
from baton.converter import to_json
from baton.exceptions import BatonError, RPCError
from baton.workflow import _Definition

if TYPE_CHECKING:
    from baton.client import Client

__all__ = [
    "Schedule",
    "ScheduleAction",
    "ScheduleActionExecution",
    "ScheduleActionExecutionStartWorkflow",
    "ScheduleActionResult",
    "ScheduleActionStartWorkflow",
    "ScheduleAlreadyRunningError",
    "ScheduleAsyncIterator",
    "ScheduleBackfill",
    "ScheduleCalendarSpec",
    "ScheduleDescription",
    "ScheduleHandle",
    "ScheduleInfo",
    "ScheduleIntervalSpec",
    "ScheduleListAction",
    "ScheduleListActionStartWorkflow",
    "ScheduleListDescription",
    "ScheduleListInfo",
    "ScheduleListSchedule",
    "ScheduleListState",
    "ScheduleOverlapPolicy",
    "SchedulePolicy",
    "ScheduleRange",
    "ScheduleSpec",
    "ScheduleState",
    "ScheduleUpdate",
    "ScheduleUpdateInput",
]

_NO_ARG: Any = object()
# How often ``ScheduleHandle.update`` describes and retries when the
# schedule changed between its describe and its update (each action the
# schedule takes changes it).
_UPDATE_ATTEMPTS = 20


class ScheduleAlreadyRunningError(BatonError):
    """``create_schedule`` with an id that a schedule already has."""

    def __init__(self) -> None:
        super().__init__("Schedule already running")


class ScheduleOverlapPolicy(IntEnum):
    """What to do when an action is due while a workflow the schedule
    started is still open (Temporal's values)."""

    #: Don't start it (the default).
    SKIP = 1
    #: Start it once the open one closes; at most one waits.
    BUFFER_ONE = 2
    #: Start every waiting one in turn as the previous closes.
    BUFFER_ALL = 3
    #: Request cancellation of the open one, start after it closed.
    CANCEL_OTHER = 4
    #: Terminate the open one, then start.
    TERMINATE_OTHER = 5
    #: Start it anyway.
    ALLOW_ALL = 6


def _overlap_from_wire(name: Any) -> ScheduleOverlapPolicy:
    return ScheduleOverlapPolicy[str(name)] if name else ScheduleOverlapPolicy.SKIP


def _ts(value: Any) -> datetime:
    return parse_timestamp(str(value))


def _opt_ts(value: Any) -> datetime | None:
    return parse_timestamp(str(value)) if value else None


def _opt_dur(value: Any) -> timedelta | None:
    return parse_duration(str(value)) if value else None


@dataclass(frozen=True)
class ScheduleRange:
    """Values ``start`` to ``end`` inclusive every ``step``: an ``end``
    below ``start`` becomes ``start``, a ``step`` of 0 becomes 1."""

    start: int
    end: int = 0
    step: int = 0

    def __post_init__(self) -> None:
        if self.end < self.start:
            object.__setattr__(self, "end", self.start)
        if self.step == 0:
            object.__setattr__(self, "step", 1)

    def _to_wire(self) -> dict[str, int]:
        return {"start": self.start, "end": self.end, "step": self.step}

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> ScheduleRange:
        return ScheduleRange(int(d["start"]), int(d.get("end", 0)), int(d.get("step", 0)))


def _ranges_to_wire(ranges: Sequence[ScheduleRange]) -> list[dict[str, int]]:
    return [r._to_wire() for r in ranges]


def _ranges_from_wire(d: dict[str, Any], key: str) -> Sequence[ScheduleRange]:
    return tuple(
        ScheduleRange._from_wire(r) for r in cast("list[dict[str, Any]]", d.get(key) or [])
    )


@dataclass
class ScheduleCalendarSpec:
    """Calendar times: a time matches when each field matches one of its
    ranges (``year`` empty: every year). ``day_of_week`` is 0-6, 0 Sunday.
    The defaults are Temporal's: midnight of every day."""

    second: Sequence[ScheduleRange] = (ScheduleRange(0),)
    minute: Sequence[ScheduleRange] = (ScheduleRange(0),)
    hour: Sequence[ScheduleRange] = (ScheduleRange(0),)
    day_of_month: Sequence[ScheduleRange] = (ScheduleRange(1, 31),)
    month: Sequence[ScheduleRange] = (ScheduleRange(1, 12),)
    year: Sequence[ScheduleRange] = ()
    day_of_week: Sequence[ScheduleRange] = (ScheduleRange(0, 6),)
    comment: str | None = None

    _FIELDS = ("second", "minute", "hour", "day_of_month", "month", "year", "day_of_week")

    def _to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self._FIELDS:
            ranges = cast("Sequence[ScheduleRange]", getattr(self, name))
            if ranges:
                out[name] = _ranges_to_wire(ranges)
            elif name != "year":
                # Temporal: a field without ranges matches nothing; the
                # server would read an absent field as its default.
                raise ValueError(f"ScheduleCalendarSpec.{name} needs at least one range")
        if self.comment:
            out["comment"] = self.comment
        return out

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> ScheduleCalendarSpec:
        # An absent field is the server's default, which is Temporal's.
        default = ScheduleCalendarSpec()
        kwargs: dict[str, Any] = {}
        for name in ScheduleCalendarSpec._FIELDS:
            kwargs[name] = _ranges_from_wire(d, name) if d.get(name) else getattr(default, name)
        return ScheduleCalendarSpec(**kwargs, comment=d.get("comment") or None)


@dataclass
class ScheduleIntervalSpec:
    """The times epoch + n × ``every`` + ``offset`` (whole seconds)."""

    every: timedelta
    offset: timedelta | None = None

    def _to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"every": format_duration(self.every)}
        if self.offset:
            out["offset"] = format_duration(self.offset)
        return out

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> ScheduleIntervalSpec:
        return ScheduleIntervalSpec(parse_duration(str(d["every"])), _opt_dur(d.get("offset")))


@dataclass
class ScheduleSpec:
    """When actions are due: the union of ``calendars``', ``intervals``' and
    ``cron_expressions``' times, minus those matching ``skip``, between
    ``start_at`` and ``end_at``, each delayed by a jitter below ``jitter``
    (the same on every node), in ``time_zone_name`` (IANA, default UTC)."""

    calendars: Sequence[ScheduleCalendarSpec] = field(default_factory=lambda: [])
    intervals: Sequence[ScheduleIntervalSpec] = field(default_factory=lambda: [])
    cron_expressions: Sequence[str] = field(default_factory=lambda: [])
    skip: Sequence[ScheduleCalendarSpec] = field(default_factory=lambda: [])
    start_at: datetime | None = None
    end_at: datetime | None = None
    jitter: timedelta | None = None
    time_zone_name: str | None = None

    def _to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.cron_expressions:
            out["cron_expressions"] = list(self.cron_expressions)
        if self.calendars:
            out["calendars"] = [c._to_wire() for c in self.calendars]
        if self.intervals:
            out["intervals"] = [i._to_wire() for i in self.intervals]
        if self.skip:
            out["exclude_calendars"] = [c._to_wire() for c in self.skip]
        if self.start_at is not None:
            out["start_time"] = format_timestamp(self.start_at)
        if self.end_at is not None:
            out["end_time"] = format_timestamp(self.end_at)
        if self.jitter:
            out["jitter"] = format_duration(self.jitter)
        if self.time_zone_name:
            out["time_zone"] = self.time_zone_name
        return out

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> ScheduleSpec:
        def calendars(key: str) -> list[ScheduleCalendarSpec]:
            rows = cast("list[dict[str, Any]]", d.get(key) or [])
            return [ScheduleCalendarSpec._from_wire(c) for c in rows]

        return ScheduleSpec(
            calendars=calendars("calendars"),
            intervals=[
                ScheduleIntervalSpec._from_wire(i)
                for i in cast("list[dict[str, Any]]", d.get("intervals") or [])
            ],
            cron_expressions=[str(c) for c in cast("list[Any]", d.get("cron_expressions") or [])],
            skip=calendars("exclude_calendars"),
            start_at=_opt_ts(d.get("start_time")),
            end_at=_opt_ts(d.get("end_time")),
            jitter=_opt_dur(d.get("jitter")),
            time_zone_name=d.get("time_zone") or None,
        )


class ScheduleAction(ABC):
    """What a schedule does when an action is due (one kind so far:
    :class:`ScheduleActionStartWorkflow`)."""

    @abstractmethod
    def _to_wire(self) -> dict[str, Any]: ...

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> ScheduleAction:
        start = d.get("start_workflow")
        if not isinstance(start, dict):
            raise ValueError(f"unknown schedule action {sorted(d)}")
        return ScheduleActionStartWorkflow._from_wire(cast("dict[str, Any]", start))


@dataclass(init=False)
class ScheduleActionStartWorkflow(ScheduleAction):
    """Starts a workflow. Each started run's workflow id is ``id`` plus
    ``-`` and its nominal time (``report-2025-01-06T09:00:00Z``); its memo
    also carries ``TemporalScheduledById`` and
    ``TemporalScheduledStartTime``. ``workflow`` is a ``@workflow.run``
    method, a ``@workflow.defn`` class or a type name; the other options
    are :meth:`Client.start_workflow`'s."""

    workflow: str
    args: Sequence[Any]
    id: str
    task_queue: str
    execution_timeout: timedelta | None
    run_timeout: timedelta | None
    task_timeout: timedelta | None
    retry_policy: RetryPolicy | None
    memo: Mapping[str, Any] | None

    def __init__(
        self,
        workflow: str | Callable[..., Awaitable[Any]] | type,
        arg: Any = _NO_ARG,
        *,
        args: Sequence[Any] = (),
        id: str,
        task_queue: str,
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        retry_policy: RetryPolicy | None = None,
        memo: Mapping[str, Any] | None = None,
    ) -> None:
        if not id:
            raise ValueError("ID required")
        if not task_queue:
            raise ValueError("Task queue required")
        if arg is not _NO_ARG:
            if args:
                raise ValueError("pass either one positional arg or args=[...], not both")
            args = [arg]
        self.workflow = workflow if isinstance(workflow, str) else _Definition.of(workflow).name
        self.args = list(args)
        self.id = id
        self.task_queue = task_queue
        self.execution_timeout = execution_timeout
        self.run_timeout = run_timeout
        self.task_timeout = task_timeout
        self.retry_policy = retry_policy
        self.memo = memo

    def _to_wire(self) -> dict[str, Any]:
        start: dict[str, Any] = {
            "workflow_id": self.id,
            "workflow_type": self.workflow,
            "task_queue": self.task_queue,
            "input": [to_json(a) for a in self.args],
        }
        for key, value in (
            ("workflow_execution_timeout", self.execution_timeout),
            ("workflow_run_timeout", self.run_timeout),
            ("workflow_task_timeout", self.task_timeout),
        ):
            if value is not None:
                start[key] = format_duration(value)
        if self.retry_policy is not None:
            start["retry_policy"] = self.retry_policy.to_wire()
        if self.memo is not None:
            start["memo"] = {k: to_json(v) for k, v in self.memo.items()}
        return {"start_workflow": start}

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> ScheduleActionStartWorkflow:
        raw_input = d.get("input")
        if raw_input is None:
            args: list[Any] = []
        elif isinstance(raw_input, list):
            args = cast("list[Any]", raw_input)
        else:
            args = [raw_input]
        retry = d.get("retry_policy")
        memo = d.get("memo")
        return ScheduleActionStartWorkflow(
            str(d["workflow_type"]),
            args=args,
            id=str(d["workflow_id"]),
            task_queue=str(d["task_queue"]),
            execution_timeout=_opt_dur(d.get("workflow_execution_timeout")),
            run_timeout=_opt_dur(d.get("workflow_run_timeout")),
            task_timeout=_opt_dur(d.get("workflow_task_timeout")),
            retry_policy=RetryPolicy.from_wire(cast("dict[str, Any]", retry))
            if isinstance(retry, dict)
            else None,
            memo=cast("dict[str, Any]", memo) if isinstance(memo, dict) else None,
        )


@dataclass
class ScheduleBackfill:
    """A past time range whose actions are taken now (after ``start_at``, up
    to ``end_at``), with ``overlap`` instead of the schedule's policy."""

    start_at: datetime
    end_at: datetime
    overlap: ScheduleOverlapPolicy | None = None

    def _to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "start_time": format_timestamp(self.start_at),
            "end_time": format_timestamp(self.end_at),
        }
        if self.overlap is not None:
            out["overlap_policy"] = ScheduleOverlapPolicy(self.overlap).name
        return out


@dataclass
class SchedulePolicy:
    """``overlap``; ``catchup_window``: after downtime a missed action is
    still taken if it is at most this late (at least 10 s);
    ``pause_on_failure``: pause when a started workflow fails or times out."""

    overlap: ScheduleOverlapPolicy = ScheduleOverlapPolicy.SKIP
    catchup_window: timedelta = timedelta(days=365)
    pause_on_failure: bool = False

    def _to_wire(self) -> dict[str, Any]:
        return {
            "overlap_policy": ScheduleOverlapPolicy(self.overlap).name,
            "catchup_window": format_duration(self.catchup_window),
            "pause_on_failure": self.pause_on_failure,
        }

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> SchedulePolicy:
        return SchedulePolicy(
            overlap=_overlap_from_wire(d.get("overlap_policy")),
            catchup_window=_opt_dur(d.get("catchup_window")) or timedelta(days=365),
            pause_on_failure=bool(d.get("pause_on_failure", False)),
        )


@dataclass
class ScheduleState:
    """``paused`` with a ``note``; with ``limited_actions``, scheduled
    actions stop once ``remaining_actions`` reaches 0 (triggers and
    backfills still run)."""

    note: str | None = None
    paused: bool = False
    limited_actions: bool = False
    remaining_actions: int = 0

    def _to_wire(self) -> dict[str, Any]:
        return {
            "note": self.note or "",
            "paused": self.paused,
            "limited_actions": self.limited_actions,
            "remaining_actions": self.remaining_actions,
        }

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> ScheduleState:
        return ScheduleState(
            note=d.get("note") or None,
            paused=bool(d.get("paused", False)),
            limited_actions=bool(d.get("limited_actions", False)),
            remaining_actions=int(d.get("remaining_actions", 0)),
        )


@dataclass
class Schedule:
    """A schedule: when (``spec``), what (``action``), how (``policy``) and
    its ``state``."""

    action: ScheduleAction
    spec: ScheduleSpec
    policy: SchedulePolicy = field(default_factory=SchedulePolicy)
    state: ScheduleState = field(default_factory=ScheduleState)

    def _to_wire(self) -> dict[str, Any]:
        return {
            "spec": self.spec._to_wire(),
            "action": self.action._to_wire(),
            "policies": self.policy._to_wire(),
            "state": self.state._to_wire(),
        }

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> Schedule:
        return Schedule(
            action=ScheduleAction._from_wire(cast("dict[str, Any]", d["action"])),
            spec=ScheduleSpec._from_wire(cast("dict[str, Any]", d.get("spec") or {})),
            policy=SchedulePolicy._from_wire(cast("dict[str, Any]", d.get("policies") or {})),
            state=ScheduleState._from_wire(cast("dict[str, Any]", d.get("state") or {})),
        )


class ScheduleActionExecution:
    """An action a schedule took (one kind so far:
    :class:`ScheduleActionExecutionStartWorkflow`)."""


@dataclass
class ScheduleActionExecutionStartWorkflow(ScheduleActionExecution):
    """A workflow the schedule started."""

    workflow_id: str
    first_execution_run_id: str


@dataclass
class ScheduleActionResult:
    """One action taken: when it was due (jitter included), when it
    started, and the workflow it started."""

    scheduled_at: datetime
    started_at: datetime
    action: ScheduleActionExecution

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> ScheduleActionResult:
        return ScheduleActionResult(
            scheduled_at=_ts(d["schedule_time"]),
            started_at=_ts(d["actual_time"]),
            action=ScheduleActionExecutionStartWorkflow(
                str(d["workflow_id"]), str(d.get("run_id") or "")
            ),
        )


def _results(rows: Any) -> list[ScheduleActionResult]:
    return [ScheduleActionResult._from_wire(r) for r in cast("list[dict[str, Any]]", rows or [])]


@dataclass
class ScheduleInfo:
    """What the schedule has done: counters, the workflows it started that
    are still open, its last 10 actions (oldest first) and its next 10
    action times (none while paused)."""

    num_actions: int
    num_actions_missed_catchup_window: int
    num_actions_skipped_overlap: int
    running_actions: Sequence[ScheduleActionExecution]
    recent_actions: Sequence[ScheduleActionResult]
    next_action_times: Sequence[datetime]
    created_at: datetime
    last_updated_at: datetime | None

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> ScheduleInfo:
        return ScheduleInfo(
            num_actions=int(d.get("action_count", 0)),
            num_actions_missed_catchup_window=int(d.get("missed_catchup_window", 0)),
            num_actions_skipped_overlap=int(d.get("overlap_skipped", 0)),
            running_actions=[
                ScheduleActionExecutionStartWorkflow(str(r["workflow_id"]), str(r["run_id"]))
                for r in cast("list[dict[str, Any]]", d.get("running_workflows") or [])
            ],
            recent_actions=_results(d.get("recent_actions")),
            next_action_times=[
                _ts(t) for t in cast("list[Any]", d.get("future_action_times") or [])
            ],
            created_at=_ts(d["create_time"]),
            last_updated_at=_opt_ts(d.get("update_time")),
        )


@dataclass
class ScheduleDescription:
    """``handle.describe()``: the schedule as stored and its info;
    ``raw_description`` is the server's JSON (with ``conflict_token``)."""

    id: str
    schedule: Schedule
    info: ScheduleInfo
    raw_description: dict[str, Any]

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> ScheduleDescription:
        return ScheduleDescription(
            id=str(d["schedule_id"]),
            schedule=Schedule._from_wire(cast("dict[str, Any]", d["schedule"])),
            info=ScheduleInfo._from_wire(cast("dict[str, Any]", d["info"])),
            raw_description=d,
        )


@dataclass
class ScheduleUpdateInput:
    """What an updater of :meth:`ScheduleHandle.update` is given."""

    description: ScheduleDescription


@dataclass
class ScheduleUpdate:
    """What an updater returns: the whole new schedule."""

    schedule: Schedule


class ScheduleListAction:
    """The action of a listed schedule (one kind so far)."""


@dataclass
class ScheduleListActionStartWorkflow(ScheduleListAction):
    """A listed schedule starts workflows of this type."""

    workflow: str


@dataclass
class ScheduleListState:
    note: str | None
    paused: bool


@dataclass
class ScheduleListSchedule:
    action: ScheduleListAction
    spec: ScheduleSpec
    state: ScheduleListState


@dataclass
class ScheduleListInfo:
    recent_actions: Sequence[ScheduleActionResult]
    next_action_times: Sequence[datetime]


@dataclass
class ScheduleListDescription:
    """One row of ``client.list_schedules()``; ``raw_entry`` is the
    server's JSON."""

    id: str
    schedule: ScheduleListSchedule
    info: ScheduleListInfo
    raw_entry: dict[str, Any]

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> ScheduleListDescription:
        return ScheduleListDescription(
            id=str(d["schedule_id"]),
            schedule=ScheduleListSchedule(
                action=ScheduleListActionStartWorkflow(str(d["workflow_type"])),
                spec=ScheduleSpec._from_wire(cast("dict[str, Any]", d.get("spec") or {})),
                state=ScheduleListState(
                    note=d.get("note") or None, paused=bool(d.get("paused", False))
                ),
            ),
            info=ScheduleListInfo(
                recent_actions=_results(d.get("recent_actions")),
                next_action_times=[
                    _ts(t) for t in cast("list[Any]", d.get("future_action_times") or [])
                ],
            ),
            raw_entry=d,
        )


class ScheduleHandle:
    """A schedule by id: describe, pause, unpause, trigger, backfill,
    update and delete it. A schedule that does not exist raises
    :class:`RPCError` with status 404 (``code`` ``not_found``)."""

    def __init__(self, client: Client, id: str) -> None:
        self._client = client
        self.id = id

    def _path(self, suffix: str = "") -> str:
        return f"/schedules/{quote(self.id, safe='')}{suffix}"

    async def describe(self) -> ScheduleDescription:
        resp = await self._client._call("GET", self._path())
        return ScheduleDescription._from_wire(resp.json_object())

    async def pause(self, *, note: str | None = None) -> None:
        """Stops scheduled actions (triggers and backfills still run); the
        note replaces the schedule's."""
        await self._client._call("POST", self._path("/pause"), _note(note))

    async def unpause(self, *, note: str | None = None) -> None:
        """Resumes with the spec's first time after now: times that passed
        while paused are not made up."""
        await self._client._call("POST", self._path("/unpause"), _note(note))

    async def trigger(self, *, overlap: ScheduleOverlapPolicy | None = None) -> None:
        """One action now (nominal time now), with ``overlap`` instead of
        the schedule's policy; not subject to pause or remaining actions."""
        body: dict[str, Any] = {}
        if overlap is not None:
            body["overlap_policy"] = ScheduleOverlapPolicy(overlap).name
        await self._client._call("POST", self._path("/trigger"), body)

    async def backfill(self, *backfill: ScheduleBackfill) -> None:
        """Takes the spec's times in each range now, each with its nominal
        time in its workflow id. An ``end_at`` before ``start_at`` is a 400."""
        if not backfill:
            raise ValueError("At least one backfill required")
        body = {"backfills": [b._to_wire() for b in backfill]}
        await self._client._call("POST", self._path("/backfill"), body)

    async def update(
        self,
        updater: Callable[
            [ScheduleUpdateInput], ScheduleUpdate | Awaitable[ScheduleUpdate | None] | None
        ],
    ) -> None:
        """Describes the schedule, calls ``updater`` with the description and
        writes the schedule it returns (nothing when it returns ``None``),
        guarded by the description's conflict token: when the schedule
        changed in between (an action it took, another client), ``updater``
        is called again with a fresh description."""
        for _ in range(_UPDATE_ATTEMPTS):
            description = await self.describe()
            result = updater(ScheduleUpdateInput(description))
            if inspect.isawaitable(result):
                result = await result
            if result is None:
                return
            body = {
                "schedule": result.schedule._to_wire(),
                "conflict_token": description.raw_description["conflict_token"],
            }
            try:
                await self._client._call("POST", self._path("/update"), body)
                return
            except RPCError as err:
                if err.status != 409:
                    raise
        raise RPCError(
            f"schedule {self.id!r} kept changing during {_UPDATE_ATTEMPTS} update attempts",
            status=409,
            code="conflict",
        )

    async def delete(self) -> None:
        """Deletes the schedule; the workflows it started keep running."""
        await self._client._call("DELETE", self._path())


def _note(note: str | None) -> dict[str, Any]:
    return {} if note is None else {"note": note}


class ScheduleAsyncIterator:
    """What ``client.list_schedules()`` returns: iterate it with ``async
    for``, directly or after ``await`` (``temporalio``'s form, whose
    ``list_schedules`` is a coroutine). Pages are fetched as needed."""

    def __init__(self, client: Client, params: dict[str, str]) -> None:
        self._client = client
        self._params = params
        self._page: list[ScheduleListDescription] | None = None
        self._index = 0
        self._token: str | None = None

    def __await__(self) -> Generator[Any, None, ScheduleAsyncIterator]:
        async def itself() -> ScheduleAsyncIterator:
            return self

        return itself().__await__()

    @property
    def current_page(self) -> Sequence[ScheduleListDescription] | None:
        return self._page

    @property
    def next_page_token(self) -> str | None:
        return self._token

    async def fetch_next_page(self) -> None:
        page = dict(self._params)
        if self._token:
            page["next_page_token"] = self._token
        data = (await self._client._call("GET", "/schedules?" + urlencode(page))).json_object()
        rows = cast("list[dict[str, Any]]", data.get("schedules") or [])
        self._page = [ScheduleListDescription._from_wire(r) for r in rows]
        self._index = 0
        self._token = data.get("next_page_token") or None

    def __aiter__(self) -> ScheduleAsyncIterator:
        return self

    async def __anext__(self) -> ScheduleListDescription:
        while True:
            if self._page is not None and self._index < len(self._page):
                self._index += 1
                return self._page[self._index - 1]
            if self._page is not None and self._token is None:
                raise StopAsyncIteration
            await self.fetch_next_page()


def list_params(*, id_prefix: str | None, paused: bool | None, page_size: int) -> dict[str, str]:
    """The query of ``GET …/schedules`` for these filters."""
    params: dict[str, str] = {"page_size": str(page_size)}
    if id_prefix:
        params["id_prefix"] = id_prefix
    if paused is not None:
        params["paused"] = "true" if paused else "false"
    return params
