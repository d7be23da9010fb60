"""The client for Baton's REST API (as ``temporalio.client``): start
workflows (also with a start signal), signal, cancel, wait for results,
update, inspect, terminate, and finish activities that completed
asynchronously; start, follow and stop batch operations over a list
query (their types live in ``baton._batch``); configure inbound webhook
sources and read their delivery logs; create and manage schedules (their types live in
``baton._schedule`` and are exported from here, as ``temporalio.client``
exports them).

    client = await Client.connect("http://localhost:7233", namespace="default")
    result = await client.execute_workflow(Onboarding.run, user, id="onboard-1", task_queue="onboarding")
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum, IntEnum
from typing import Any, Generic, TypeVar, cast, overload
from urllib.parse import quote, urlencode

from baton import _http, _schedule
from baton._batch import (
    BatchOperation,
    BatchOperationCancellation,
    BatchOperationDeletion,
    BatchOperationDescription,
    BatchOperationFailure,
    BatchOperationReset,
    BatchOperationSignal,
    BatchOperationState,
    BatchOperationTermination,
    BatchResetType,
    operation_to_wire,
)
from baton._payloads import resolve_history
from baton._protocol import EventDict, format_duration, parse_timestamp
from baton._schedule import (
    Schedule,
    ScheduleAction,
    ScheduleActionExecution,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionResult,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleAsyncIterator,
    ScheduleBackfill,
    ScheduleCalendarSpec,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleInfo,
    ScheduleIntervalSpec,
    ScheduleListAction,
    ScheduleListActionStartWorkflow,
    ScheduleListDescription,
    ScheduleListInfo,
    ScheduleListSchedule,
    ScheduleListState,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from baton.common import (
    RetryPolicy,
    TypedSearchAttributes,
    WorkflowExecutionStatus,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from baton.converter import error_to_failure, failure_to_error, from_json, to_json
from baton.exceptions import (
    ApplicationError,
    CancelledError,
    RPCError,
    TerminatedError,
    TimeoutError,
    WorkflowAlreadyCompletedError,
    WorkflowAlreadyStartedError,
    WorkflowContinuedAsNewError,
    WorkflowFailureError,
    WorkflowNotFoundError,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from baton.workflow import _Definition

__all__ = [
    "AsyncActivityHandle",
    "BatchOperation",
    "BatchOperationCancellation",
    "BatchOperationDeletion",
    "BatchOperationDescription",
    "BatchOperationFailure",
    "BatchOperationReset",
    "BatchOperationSignal",
    "BatchOperationState",
    "BatchOperationTermination",
    "BatchResetType",
    "Client",
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
    "WorkflowExecution",
    "WorkflowExecutionDescription",
    "WorkflowHandle",
    "WorkflowHistory",
    "WorkflowUpdateHandle",
    "WorkflowUpdateStage",
]

_R = TypeVar("_R")
_NO_ARG: Any = object()
# How long one result long-poll asks the server to wait (its maximum is 60 s).
_RESULT_POLL = timedelta(seconds=55)
# Client timeout of an update request; the server answers within 30 s.
_UPDATE_TIMEOUT = 90.0


@dataclass
class WorkflowExecution:
    """A row of ``list_workflows`` and the core of a description."""

    id: str
    run_id: str
    workflow_type: str
    task_queue: str
    status: WorkflowExecutionStatus
    start_time: datetime
    close_time: datetime | None
    history_length: int
    namespace: str
    raw: dict[str, Any]

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> WorkflowExecution:
        return WorkflowExecution(
            id=d["workflow_id"],
            run_id=d["run_id"],
            workflow_type=d["workflow_type"],
            task_queue=d["task_queue"],
            status=WorkflowExecutionStatus(d["status"]),
            start_time=parse_timestamp(d["start_time"]),
            close_time=parse_timestamp(d["close_time"]) if d.get("close_time") else None,
            history_length=int(d.get("history_length", 0)),
            namespace=d.get("namespace", ""),
            raw=d,
        )


@dataclass
class WorkflowExecutionDescription(WorkflowExecution):
    """``handle.describe()``: the execution plus what is pending."""

    pending_activities: list[dict[str, Any]]
    pending_timers: list[dict[str, Any]]
    pending_workflow_task: dict[str, Any] | None
    history_size_bytes: int
    #: The endpoint version of the run's task queue its tasks go to (the
    #: queue's current version when it started, unless it was moved).
    pinned_version: str | None = None
    #: The memo given at start (carried by continue-as-new unless changed).
    memo: dict[str, Any] = field(default_factory=lambda: {})
    #: The run's custom search attributes now (set at start, upserted).
    typed_search_attributes: TypedSearchAttributes = field(
        default_factory=lambda: TypedSearchAttributes.empty
    )
    #: Counts the runs a workflow retry policy started; 1 for the first.
    attempt: int = 1
    #: For a child workflow: the parent run (``workflow_id``, ``run_id``,
    #: ``initiated_event_id``, ``parent_close_policy``).
    parent: dict[str, Any] | None = None
    #: Every child the run started, open or closed (``workflow_id``,
    #: ``run_id``, ``workflow_type``, ``status``, ``parent_close_policy``).
    children: list[dict[str, Any]] = field(default_factory=lambda: [])


@dataclass
class WorkflowHistory:
    """A run's events, as ``fetch_history`` returns them and the replayer
    reads them (also the shape of ``baton workflow show --output json``)."""

    workflow_id: str
    events: list[EventDict]
    run_id: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"workflow_id": self.workflow_id, "events": self.events}
        if self.run_id:
            out["run_id"] = self.run_id
        return out

    @staticmethod
    def from_json(workflow_id: str, history: str | dict[str, Any] | list[Any]) -> WorkflowHistory:
        import json

        data: Any = json.loads(history) if isinstance(history, str) else history
        if isinstance(data, list):
            return WorkflowHistory(workflow_id, cast("list[EventDict]", data))
        d = cast("dict[str, Any]", data)
        return WorkflowHistory(
            d.get("workflow_id") or workflow_id,
            cast("list[EventDict]", d.get("events") or []),
            d.get("run_id"),
        )


class Client:
    """A connection to one namespace of a Baton server's REST API."""

    def __init__(
        self,
        target: str,
        *,
        namespace: str = "default",
        api_key: str | None = None,
        identity: str | None = None,
        tls: ssl.SSLContext | str | None = None,
    ) -> None:
        """``tls`` verifies an ``https://`` target: an ``ssl.SSLContext``,
        or the path of a PEM CA bundle to trust (besides the system's CAs,
        which are the default)."""
        if "://" not in target:
            target = "http://" + target
        self._base = target.rstrip("/")
        self.namespace = namespace
        self._api_key = api_key
        self.identity = identity
        if isinstance(tls, str):
            context = ssl.create_default_context()
            context.load_verify_locations(cafile=tls)
            tls = context
        self._tls = tls

    @staticmethod
    async def connect(
        target: str,
        *,
        namespace: str = "default",
        api_key: str | None = None,
        identity: str | None = None,
        tls: ssl.SSLContext | str | None = None,
    ) -> Client:
        """Checks the server answers and returns a client (``tls``: see
        ``Client``)."""
        client = Client(target, namespace=namespace, api_key=api_key, identity=identity, tls=tls)
        await client._call("GET", "/healthz", ns=False)
        return client

    @property
    def target(self) -> str:
        return self._base

    # --- plumbing ---------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        ns: bool = True,
        timeout: float = 90.0,
        ok: Sequence[int] = (200, 201, 202, 204),
    ) -> _http.Response:
        url = (
            self._base
            + (f"/api/v1/namespaces/{quote(self.namespace, safe='')}" if ns else "")
            + path
        )
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            resp = await _http.request(
                method, url, body=body, headers=headers, timeout=timeout, ssl_context=self._tls
            )
        except (OSError, asyncio.TimeoutError) as err:
            raise RPCError(
                f"cannot reach {self._base}: {err}", status=0, code="unavailable"
            ) from err
        if resp.status not in ok:
            detail, code = resp.body.decode("utf-8", "replace")[:500], None
            p: dict[str, Any] | None = None
            try:
                problem = resp.json()
                if isinstance(problem, dict):
                    p = cast("dict[str, Any]", problem)
                    detail = str(p.get("detail") or p.get("title") or detail)
                    code = cast("str | None", p.get("code"))
            except ValueError:
                pass
            raise RPCError(
                f"{method} {path}: {resp.status} {detail}",
                status=resp.status,
                code=code,
                detail=detail,
                problem=p,
            )
        return resp

    # --- workflows -----------------------------------------------------------------------

    @overload
    async def start_workflow(
        self,
        workflow: Callable[..., Awaitable[_R]],
        arg: Any = _NO_ARG,
        *,
        id: str,
        task_queue: str,
        args: Sequence[Any] = (),
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.FAIL,
        request_id: str | None = None,
        result_type: type | None = None,
        start_signal: str | None = None,
        start_signal_args: Sequence[Any] = (),
        retry_policy: RetryPolicy | None = None,
        memo: Mapping[str, Any] | None = None,
        search_attributes: TypedSearchAttributes | None = None,
    ) -> WorkflowHandle[_R]: ...

    @overload
    async def start_workflow(
        self,
        workflow: str,
        arg: Any = _NO_ARG,
        *,
        id: str,
        task_queue: str,
        args: Sequence[Any] = (),
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.FAIL,
        request_id: str | None = None,
        result_type: type | None = None,
        start_signal: str | None = None,
        start_signal_args: Sequence[Any] = (),
        retry_policy: RetryPolicy | None = None,
        memo: Mapping[str, Any] | None = None,
        search_attributes: TypedSearchAttributes | None = None,
    ) -> WorkflowHandle[Any]: ...

    async def start_workflow(
        self,
        workflow: Any,
        arg: Any = _NO_ARG,
        *,
        id: str,
        task_queue: str,
        args: Sequence[Any] = (),
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.FAIL,
        request_id: str | None = None,
        result_type: type | None = None,
        start_signal: str | None = None,
        start_signal_args: Sequence[Any] = (),
        retry_policy: RetryPolicy | None = None,
        memo: Mapping[str, Any] | None = None,
        search_attributes: TypedSearchAttributes | None = None,
    ) -> WorkflowHandle[Any]:
        """Starts a workflow (a ``@workflow.run`` method, a ``@workflow.defn``
        class, or a type name). Raises :class:`WorkflowAlreadyStartedError`
        when the id policies refuse.

        With ``start_signal`` (and ``start_signal_args``) this is Temporal's
        signal-with-start: the signal goes to the id's open run if there is
        one, else a new run starts with the signal delivered before its
        first step (conflict policy USE_EXISTING, whatever
        ``id_conflict_policy`` says; TERMINATE_EXISTING is refused).

        ``retry_policy`` retries the whole run when it fails or times out
        (each attempt is a new run of the chain); ``memo`` is shown by
        ``describe()`` and read by the workflow with ``workflow.memo()``."""
        if isinstance(workflow, str):
            name, ret = workflow, None
        else:
            d = _Definition.of(workflow)
            name, ret = d.name, d.ret_type
        if arg is not _NO_ARG:
            if args:
                raise ValueError("pass either one positional arg or args=[...], not both")
            args = [arg]
        body: dict[str, Any] = {
            "workflow_type": name,
            "task_queue": task_queue,
            "input": [to_json(a) for a in args],
            "id_reuse_policy": WorkflowIDReusePolicy(id_reuse_policy).value,
            "id_conflict_policy": WorkflowIDConflictPolicy(id_conflict_policy).value,
            "request_id": request_id or str(uuid.uuid4()),
        }
        for key, value in (
            ("workflow_execution_timeout", execution_timeout),
            ("workflow_run_timeout", run_timeout),
            ("workflow_task_timeout", task_timeout),
        ):
            if value is not None:
                body[key] = format_duration(value)
        if retry_policy is not None:
            body["retry_policy"] = retry_policy.to_wire()
        if memo is not None:
            body["memo"] = {k: to_json(v) for k, v in memo.items()}
        if search_attributes:
            body["search_attributes"] = search_attributes.to_wire()
        if self.identity:
            body["identity"] = self.identity
        path = f"/workflows/{quote(id, safe='')}"
        if start_signal is not None:
            if id_conflict_policy == WorkflowIDConflictPolicy.TERMINATE_EXISTING:
                raise ValueError("signal-with-start always signals the open run (USE_EXISTING)")
            del body["id_conflict_policy"]
            body["signal_input"] = [to_json(a) for a in start_signal_args]
            path += f"/signal-with-start/{quote(start_signal, safe='')}"
        try:
            resp = await self._call("POST", path, body)
        except RPCError as err:
            if err.status == 409 and err.code == "already_exists":
                raise WorkflowAlreadyStartedError(id, name) from err
            raise
        data = cast("dict[str, Any]", resp.json())
        # As in temporalio, the handle names no run: signals, queries,
        # updates, describe, cancel, terminate and result() reach the
        # workflow id's latest run (after continue-as-new, retries, reset).
        return WorkflowHandle(
            self,
            id,
            result_run_id=data["run_id"],
            first_execution_run_id=data["run_id"],
            result_type=result_type if result_type is not None else ret,
        )

    @overload
    async def execute_workflow(
        self,
        workflow: Callable[..., Awaitable[_R]],
        arg: Any = _NO_ARG,
        *,
        id: str,
        task_queue: str,
        args: Sequence[Any] = (),
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.FAIL,
        request_id: str | None = None,
        result_type: type | None = None,
        start_signal: str | None = None,
        start_signal_args: Sequence[Any] = (),
        retry_policy: RetryPolicy | None = None,
        memo: Mapping[str, Any] | None = None,
        search_attributes: TypedSearchAttributes | None = None,
    ) -> _R: ...

    @overload
    async def execute_workflow(
        self,
        workflow: str,
        arg: Any = _NO_ARG,
        *,
        id: str,
        task_queue: str,
        args: Sequence[Any] = (),
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.FAIL,
        request_id: str | None = None,
        result_type: type | None = None,
        start_signal: str | None = None,
        start_signal_args: Sequence[Any] = (),
        retry_policy: RetryPolicy | None = None,
        memo: Mapping[str, Any] | None = None,
        search_attributes: TypedSearchAttributes | None = None,
    ) -> Any: ...

    async def execute_workflow(
        self,
        workflow: Any,
        arg: Any = _NO_ARG,
        *,
        id: str,
        task_queue: str,
        args: Sequence[Any] = (),
        execution_timeout: timedelta | None = None,
        run_timeout: timedelta | None = None,
        task_timeout: timedelta | None = None,
        id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.FAIL,
        request_id: str | None = None,
        result_type: type | None = None,
        start_signal: str | None = None,
        start_signal_args: Sequence[Any] = (),
        retry_policy: RetryPolicy | None = None,
        memo: Mapping[str, Any] | None = None,
        search_attributes: TypedSearchAttributes | None = None,
    ) -> Any:
        """Starts a workflow and waits for its result."""
        handle = await self.start_workflow(
            workflow,
            arg,
            id=id,
            task_queue=task_queue,
            args=args,
            execution_timeout=execution_timeout,
            run_timeout=run_timeout,
            task_timeout=task_timeout,
            id_reuse_policy=id_reuse_policy,
            id_conflict_policy=id_conflict_policy,
            request_id=request_id,
            result_type=result_type,
            start_signal=start_signal,
            start_signal_args=start_signal_args,
            retry_policy=retry_policy,
            memo=memo,
            search_attributes=search_attributes,
        )
        return await handle.result()

    def get_workflow_handle(
        self,
        workflow_id: str,
        *,
        run_id: str | None = None,
        result_type: type | None = None,
    ) -> WorkflowHandle[Any]:
        return WorkflowHandle(
            self, workflow_id, run_id=run_id, result_run_id=run_id, result_type=result_type
        )

    def get_workflow_handle_for(
        self,
        workflow: Callable[..., Awaitable[_R]],
        workflow_id: str,
        *,
        run_id: str | None = None,
    ) -> WorkflowHandle[_R]:
        d = _Definition.of(workflow)
        return WorkflowHandle(
            self, workflow_id, run_id=run_id, result_run_id=run_id, result_type=d.ret_type
        )

    async def list_workflows(
        self,
        query: str | None = None,
        *,
        workflow_type: str | None = None,
        workflow_id: str | None = None,
        status: WorkflowExecutionStatus | str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[WorkflowExecution]:
        """Executions of the namespace, filtered by keyword or by a list
        ``query`` in Temporal's visibility language, over system and custom
        search attributes (``"WorkflowType = 'Onboarding' AND CustomerId =
        'c-17' ORDER BY StartTime DESC"``), which the server checks (400
        naming the token)."""
        params: dict[str, str] = {"page_size": str(page_size)}
        if query:
            params["query"] = query
        if workflow_type:
            params["workflow_type"] = workflow_type
        if workflow_id:
            params["workflow_id"] = workflow_id
        if status:
            params["status"] = WorkflowExecutionStatus(str(status).upper()).value
        token: str | None = None
        while True:
            page = dict(params)
            if token:
                page["next_page_token"] = token
            resp = await self._call("GET", "/workflows?" + urlencode(page))
            data = cast("dict[str, Any]", resp.json())
            for row in cast("list[dict[str, Any]]", data.get("executions") or []):
                yield WorkflowExecution._from_wire(row)
            token = data.get("next_page_token")
            if not token:
                return

    # --- schedules -------------------------------------------------------------------------

    async def create_schedule(
        self,
        id: str,
        schedule: Schedule,
        *,
        trigger_immediately: bool = False,
        backfill: Sequence[ScheduleBackfill] = (),
    ) -> ScheduleHandle:
        """Creates a schedule; its first action is the spec's first time
        after now. Raises :class:`ScheduleAlreadyRunningError` when the id
        is taken, :class:`RPCError` (400, naming the field) for a spec,
        action or policy the server refuses (nothing is stored then).

        ``trigger_immediately`` and ``backfill`` are sent as a trigger and a
        backfill right after the create (Temporal sends them with it)."""
        try:
            await self._call(
                "POST", f"/schedules/{quote(id, safe='')}", {"schedule": schedule._to_wire()}
            )
        except RPCError as err:
            if err.status == 409 and err.code == "already_exists":
                raise ScheduleAlreadyRunningError() from err
            raise
        handle = ScheduleHandle(self, id)
        if trigger_immediately:
            await handle.trigger(overlap=schedule.policy.overlap)
        if backfill:
            await handle.backfill(*backfill)
        return handle

    def get_schedule_handle(self, id: str) -> ScheduleHandle:
        """A handle to the schedule with this id (not checked until used)."""
        return ScheduleHandle(self, id)

    def list_schedules(
        self,
        *,
        id_prefix: str | None = None,
        paused: bool | None = None,
        page_size: int = 1000,
    ) -> ScheduleAsyncIterator:
        """The namespace's schedules in id order, only those whose id starts
        with ``id_prefix`` and, with ``paused``, only paused (``True``) or
        active (``False``) ones; pages of ``page_size``. Iterate it with
        ``async for``, as is or awaited (``async for s in await
        client.list_schedules()``, as in ``temporalio``)."""
        params = _schedule.list_params(id_prefix=id_prefix, paused=paused, page_size=page_size)
        return ScheduleAsyncIterator(self, params)

    # --- batch operations ----------------------------------------------------------------

    async def start_batch_operation(
        self,
        query: str,
        operation: BatchOperation,
        *,
        job_id: str | None = None,
        reason: str = "",
        rps: float | None = None,
        request_id: str | None = None,
    ) -> BatchOperationDescription:
        """Starts a durable batch job applying ``operation`` to every run
        ``query`` (a list filter, as ``baton workflow list --query`` takes)
        matches now, at most ``rps`` runs per second (default 50, capped by
        the server), each run once even across server crashes
        (Temporal's ``StartBatchOperation``). ``job_id`` defaults to
        ``request_id``, else a new id; a retry with the same ``request_id``
        returns the job it started. Raises :class:`RPCError` (400, naming
        the field) for a request the server refuses; nothing is stored then."""
        body: dict[str, Any] = {"query": query, "reason": reason, **operation_to_wire(operation)}
        if job_id is not None:
            body["batch_id"] = job_id
        if request_id is not None:
            body["request_id"] = request_id
        if rps is not None:
            body["rps"] = rps
        if self.identity:
            body["identity"] = self.identity
        resp = await self._call("POST", "/batches", body)
        return BatchOperationDescription._from_wire(cast("dict[str, Any]", resp.json()))

    async def describe_batch_operation(self, job_id: str) -> BatchOperationDescription:
        """The job and its progress; :class:`RPCError` (404) if there is none."""
        resp = await self._call("GET", f"/batches/{quote(job_id, safe='')}")
        return BatchOperationDescription._from_wire(cast("dict[str, Any]", resp.json()))

    async def list_batch_operations(
        self, *, page_size: int = 100
    ) -> AsyncIterator[BatchOperationDescription]:
        """The namespace's jobs, newest first, fetched ``page_size`` at a time."""
        token: str | None = None
        while True:
            params = {"page_size": str(page_size)}
            if token:
                params["next_page_token"] = token
            resp = await self._call("GET", "/batches?" + urlencode(params))
            data = cast("dict[str, Any]", resp.json())
            for row in cast("list[dict[str, Any]]", data.get("batches") or []):
                yield BatchOperationDescription._from_wire(row)
            token = data.get("next_page_token")
            if not token:
                return

    async def stop_batch_operation(self, job_id: str) -> BatchOperationDescription:
        """Asks the job to stop before its next run (it ends ``STOPPED``);
        returns it as it is now. A closed job stays as it is."""
        resp = await self._call("POST", f"/batches/{quote(job_id, safe='')}/stop")
        return BatchOperationDescription._from_wire(cast("dict[str, Any]", resp.json()))

    # --- inbound webhook sources ---------------------------------------------------------

    async def create_webhook_source(
        self,
        source_id: str,
        scheme: str | Mapping[str, Any],
        secrets: Sequence[str],
        *,
        rules: Sequence[Mapping[str, Any]] = (),
        tolerance_seconds: int | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Creates an inbound webhook source: a public URL
        (``POST /api/v1/namespaces/{ns}/webhooks/{source_id}``, no API key)
        whose deliveries are verified with ``scheme`` (``"stripe"``,
        ``"github"``, ``"standard_webhooks"``, ``"slack"``, ``"shopify"``,
        or a generic HMAC as a mapping) under any of ``secrets``, then
        routed by ``rules`` (JSON objects as the REST API takes them) to a
        signal, signal-with-start, start or update. Returns the source as
        the server shows it (``secret_count``, never the secrets). Raises
        :class:`RPCError` (400, naming the field, e.g.
        ``rules/0/action/workflow_id``) for a source the server refuses."""
        body: dict[str, Any] = {
            "source_id": source_id,
            "scheme": {"type": scheme} if isinstance(scheme, str) else dict(scheme),
            "secrets": list(secrets),
            "rules": [dict(r) for r in rules],
        }
        if tolerance_seconds is not None:
            body["tolerance_seconds"] = tolerance_seconds
        if description is not None:
            body["description"] = description
        resp = await self._call("POST", "/webhooks", body)
        return cast("dict[str, Any]", resp.json())

    async def list_webhook_sources(self) -> list[dict[str, Any]]:
        """The namespace's webhook sources, by id."""
        resp = await self._call("GET", "/webhooks")
        return cast("list[dict[str, Any]]", resp.json().get("sources") or [])

    async def describe_webhook_source(self, source_id: str) -> dict[str, Any]:
        """A webhook source and its rules; :class:`RPCError` (404) if there is none."""
        resp = await self._call("GET", f"/webhooks/{quote(source_id, safe='')}")
        return cast("dict[str, Any]", resp.json())

    async def delete_webhook_source(self, source_id: str) -> None:
        """Deletes a webhook source and its delivery log."""
        await self._call("DELETE", f"/webhooks/{quote(source_id, safe='')}")

    async def list_webhook_deliveries(
        self, source_id: str, *, page_size: int = 100
    ) -> AsyncIterator[dict[str, Any]]:
        """A source's delivery log, newest first, fetched ``page_size`` at a
        time: each delivery's ``outcome`` (``acted``, ``ignored``,
        ``failed``, ``refused``), matched ``rule``, ``action``,
        ``workflow_id``, ``run_id`` and ``error``."""
        before: str | None = None
        path = f"/webhooks/{quote(source_id, safe='')}/deliveries?"
        while True:
            params = {"page_size": str(page_size)}
            if before:
                params["before"] = before
            resp = await self._call("GET", path + urlencode(params))
            data = cast("dict[str, Any]", resp.json())
            for row in cast("list[dict[str, Any]]", data.get("deliveries") or []):
                yield row
            before = data.get("next_before")
            if not before:
                return

    async def replay_webhook_delivery(self, source_id: str, delivery: str) -> dict[str, Any]:
        """Routes a logged (verified) delivery again under the source's
        current rules with the same request id, so an action already taken
        is not repeated; returns the new log entry (``replay_of`` set)."""
        resp = await self._call(
            "POST",
            f"/webhooks/{quote(source_id, safe='')}/deliveries/{quote(delivery, safe='')}/replay",
        )
        return cast("dict[str, Any]", resp.json())

    # --- async activity completion -------------------------------------------------------

    def get_async_activity_handle(self, task_token: str) -> AsyncActivityHandle:
        """A handle to finish an activity that answered with
        ``activity.raise_complete_async()``; ``task_token`` is its
        ``activity.info().task_token``."""
        return AsyncActivityHandle(self, task_token)


class ResetType(str, Enum):
    """Which completed workflow task a reset goes back to (``reset_type``)."""

    FIRST_WORKFLOW_TASK = "FIRST_WORKFLOW_TASK"
    LAST_WORKFLOW_TASK = "LAST_WORKFLOW_TASK"


class WorkflowHandle(Generic[_R]):
    """A workflow execution: wait for its result, signal, cancel, describe or terminate it."""

    def __init__(
        self,
        client: Client,
        id: str,
        *,
        run_id: str | None = None,
        result_run_id: str | None = None,
        first_execution_run_id: str | None = None,
        result_type: Any = None,
    ) -> None:
        self._client = client
        self.id = id
        #: The run this handle is bound to; ``None`` (handles from
        #: ``start_workflow`` and ``get_workflow_handle(id)``) means the
        #: workflow id's latest run, looked up on every call.
        self.run_id = run_id
        self.result_run_id = result_run_id
        #: The run ``start_workflow`` started (the chain's first).
        self.first_execution_run_id = first_execution_run_id
        self._result_type = result_type

    def _path(self, suffix: str = "", **params: str | None) -> str:
        query = {k: v for k, v in params.items() if v}
        if self.run_id:
            query.setdefault("run_id", self.run_id)
        path = f"/workflows/{quote(self.id, safe='')}{suffix}"
        return path + ("?" + urlencode(query) if query else "")

    async def result(self, *, follow_runs: bool = True, rpc_timeout: timedelta | None = None) -> _R:
        """Waits for the run to close (long-polling the server) and returns
        its result; raises :class:`WorkflowFailureError` unless it completed.
        With ``follow_runs`` (the default) the wait follows the chain through
        continue-as-new and workflow retries to its last run; without,
        a run that continued raises :class:`WorkflowContinuedAsNewError`."""
        deadline = None
        loop = asyncio.get_running_loop()
        if rpc_timeout is not None:
            deadline = loop.time() + rpc_timeout.total_seconds()
        while True:
            wait = _RESULT_POLL.total_seconds()
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - loop.time()))
            path = self._path(
                "/result",
                wait=format_duration(wait),
                follow_runs=None if follow_runs else "false",
                # Without following, the run the handle started.
                run_id=None if follow_runs else self.result_run_id,
            )
            resp = await self._client._call("GET", path, timeout=wait + 30)
            data = cast("dict[str, Any]", resp.json())
            status = WorkflowExecutionStatus(data["status"])
            if status == WorkflowExecutionStatus.RUNNING:
                if deadline is not None and loop.time() >= deadline:
                    raise asyncio.TimeoutError("workflow still running")
                continue
            return self._outcome(status, data)

    def _outcome(self, status: WorkflowExecutionStatus, data: dict[str, Any]) -> _R:
        if status == WorkflowExecutionStatus.COMPLETED:
            return cast(_R, from_json(data.get("result"), self._result_type))
        failure = cast("dict[str, Any] | None", data.get("failure"))
        cause: BaseException
        if status == WorkflowExecutionStatus.FAILED:
            cause = failure_to_error(failure or {"message": "workflow failed"})
        elif status == WorkflowExecutionStatus.TERMINATED:
            cause = TerminatedError((failure or {}).get("message", "Workflow terminated"))
        elif status == WorkflowExecutionStatus.TIMED_OUT:
            cause = TimeoutError((failure or {}).get("message", "Workflow timed out"), type=None)
        elif status == WorkflowExecutionStatus.CANCELED:
            cause = CancelledError((failure or {}).get("message", "Workflow cancelled"))
        elif status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            raise WorkflowContinuedAsNewError(str(data.get("new_execution_run_id", "")))
        else:
            cause = ApplicationError(f"workflow closed as {status.value}")
        raise WorkflowFailureError(cause=cause)

    async def describe(self) -> WorkflowExecutionDescription:
        resp = await self._client._call("GET", self._path())
        d = cast("dict[str, Any]", resp.json())
        e = WorkflowExecution._from_wire(d["execution"])
        return WorkflowExecutionDescription(
            **{k: getattr(e, k) for k in WorkflowExecution.__dataclass_fields__},
            pending_activities=d.get("pending_activities") or [],
            pending_timers=d.get("pending_timers") or [],
            pending_workflow_task=d.get("pending_workflow_task"),
            history_size_bytes=int(d.get("history_size_bytes", 0)),
            pinned_version=d.get("pinned_version"),
            memo=cast("dict[str, Any]", d.get("memo") or {}),
            typed_search_attributes=TypedSearchAttributes.from_wire(
                cast("dict[str, Any]", d.get("search_attributes") or {})
            ),
            attempt=int(d.get("attempt") or 1),
            parent=d.get("parent"),
            children=d.get("children") or [],
        )

    async def terminate(self, *args: Any, reason: str | None = None) -> None:
        body: dict[str, Any] = {}
        if self.run_id:
            body["run_id"] = self.run_id
        if reason:
            body["reason"] = reason
        if args:
            body["details"] = [to_json(a) for a in args]
        if self._client.identity:
            body["identity"] = self._client.identity
        await self._client._call("POST", f"/workflows/{quote(self.id, safe='')}/terminate", body)

    async def reset(
        self,
        *,
        reason: str,
        event_id: int | None = None,
        reset_type: ResetType | None = None,
        reapply_signals: bool = True,
        request_id: str | None = None,
    ) -> WorkflowHandle[_R]:
        """Resets the run (the latest one unless the handle names a run) to
        a completed workflow task: ``event_id`` (a WorkflowTaskCompleted
        event id) or ``reset_type`` (default :attr:`ResetType.LAST_WORKFLOW_TASK`).
        The server starts a new run with the history up to that point
        (signals recorded later are reapplied unless ``reapply_signals`` is
        false) and terminates the open run; ``POST …/reset``. Returns a
        handle bound to the new run."""
        body: dict[str, Any] = {"reason": reason}
        if event_id is not None:
            if reset_type is not None:
                raise ValueError("pass either event_id or reset_type, not both")
            body["event_id"] = event_id
        else:
            body["reset_type"] = (reset_type or ResetType.LAST_WORKFLOW_TASK).value
        if not reapply_signals:
            body["reapply_signals"] = False
        if request_id:
            body["request_id"] = request_id
        if self.run_id:
            body["run_id"] = self.run_id
        resp = await self._client._call("POST", f"/workflows/{quote(self.id, safe='')}/reset", body)
        new_run = cast("str", resp.json_object()["run_id"])
        return WorkflowHandle(
            self._client,
            self.id,
            run_id=new_run,
            result_run_id=new_run,
            first_execution_run_id=self.first_execution_run_id,
            result_type=self._result_type,
        )

    async def fetch_history(self) -> WorkflowHistory:
        """The run's events, page after page, with the payloads the server
        stored by reference put in place where replay reads them
        (docs/protocol.md §9.1), so that a :class:`baton.testing.Replayer`
        replays them."""
        events: list[EventDict] = []
        token: str | None = None
        run_id = self.run_id
        while True:
            resp = await self._client._call("GET", self._path("/history", next_page_token=token))
            data = cast("dict[str, Any]", resp.json())
            run_id = run_id or data.get("run_id")
            events.extend(cast("list[EventDict]", data.get("events") or []))
            token = data.get("next_page_token")
            if not token:
                break
        if run_id:
            events = await resolve_history(events, functools.partial(self._payload, run_id))
        return WorkflowHistory(self.id, events, run_id)

    async def _payload(self, run_id: str, sha256: str) -> Any:
        """One payload the run stored by reference (``GET …/payloads/{sha256}``)."""
        path = (
            f"/workflows/{quote(self.id, safe='')}/runs/{quote(run_id, safe='')}/payloads/{sha256}"
        )
        data = (await self._client._call("GET", path)).json_object()
        if "value" not in data:
            raise RPCError(f"GET {path}: the answer has no value", status=200)
        return data["value"]

    async def fetch_history_events(self) -> AsyncIterator[EventDict]:
        for e in (await self.fetch_history()).events:
            yield e

    async def _run_call(
        self, what: str, path: str, body: dict[str, Any], *, timeout: float = 90.0
    ) -> _http.Response:
        """A POST to this workflow; 404 and a closed run become typed errors."""
        if self.run_id:
            body["run_id"] = self.run_id
        if self._client.identity:
            body["identity"] = self._client.identity
        try:
            return await self._client._call(
                "POST", f"/workflows/{quote(self.id, safe='')}{path}", body, timeout=timeout
            )
        except RPCError as err:
            if err.status == 404:
                raise WorkflowNotFoundError(
                    f"{what}: workflow {self.id!r} not found",
                    workflow_id=self.id,
                    run_id=self.run_id,
                ) from err
            if err.status == 409 and err.code == "conflict":
                raise WorkflowAlreadyCompletedError(
                    f"{what}: workflow {self.id!r} already completed",
                    workflow_id=self.id,
                    run_id=self.run_id,
                ) from err
            raise

    async def signal(
        self,
        signal: str | Callable[..., Any],
        arg: Any = _NO_ARG,
        *,
        args: Sequence[Any] = (),
        request_id: str | None = None,
    ) -> None:
        """Sends a signal (a name or a ``@workflow.signal`` method) to the
        run. ``request_id`` makes retries safe: the run records a signal
        with a request id it has seen once. Raises
        :class:`WorkflowNotFoundError` or, for a closed run,
        :class:`WorkflowAlreadyCompletedError`."""
        name = _signal_name(signal)
        if arg is not _NO_ARG:
            if args:
                raise ValueError("pass either one positional arg or args=[...], not both")
            args = [arg]
        body: dict[str, Any] = {"input": [to_json(a) for a in args]}
        if request_id:
            body["request_id"] = request_id
        await self._run_call("signal", f"/signal/{quote(name, safe='')}", body)

    async def query(
        self,
        query: str | Callable[..., Any],
        arg: Any = _NO_ARG,
        *,
        args: Sequence[Any] = (),
        result_type: Any = None,
    ) -> Any:
        """Asks the run (the latest one unless the handle names a run) a
        query (a name or a ``@workflow.query`` method) and returns the
        answer, decoded by the method's return type (or ``result_type``).
        Works for closed runs too; nothing is recorded. Raises
        :class:`WorkflowQueryFailedError` when the handler answered a
        failure (an unknown query, bad arguments, an error it raised),
        :class:`WorkflowNotFoundError`, or :class:`RPCError` (``503``: the
        endpoint did not answer)."""
        name, ret = _query_name(query)
        if arg is not _NO_ARG:
            if args:
                raise ValueError("pass either one positional arg or args=[...], not both")
            args = [arg]
        body: dict[str, Any] = {"args": [to_json(a) for a in args]}
        if self.run_id:
            body["run_id"] = self.run_id
        path = f"/workflows/{quote(self.id, safe='')}/query/{quote(name, safe='')}"
        try:
            resp = await self._client._call("POST", path, body)
        except RPCError as err:
            if err.status == 404:
                raise WorkflowNotFoundError(
                    f"query: workflow {self.id!r} not found",
                    workflow_id=self.id,
                    run_id=self.run_id,
                ) from err
            if err.status == 400 and err.code == "query_failed":
                raise WorkflowQueryFailedError(err.detail or str(err)) from err
            raise
        data = resp.json_object()
        return from_json(data.get("result"), result_type if result_type is not None else ret)

    async def execute_update(
        self,
        update: str | Callable[..., Any],
        arg: Any = _NO_ARG,
        *,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: Any = None,
    ) -> Any:
        """Sends an update (a name or a ``@workflow.update`` method) and
        returns what its handler returned, decoded by the method's return
        type (or ``result_type``). ``id`` makes retries safe: the run runs
        an update id once and answers every retry with that outcome.
        Raises :class:`WorkflowUpdateFailedError` (the validator rejected
        the update, or the handler raised; ``cause`` says how),
        :class:`WorkflowNotFoundError` or :class:`WorkflowAlreadyCompletedError`."""
        handle = await self.start_update(
            update,
            arg,
            args=args,
            id=id,
            result_type=result_type,
            wait_for_stage=WorkflowUpdateStage.COMPLETED,
        )
        return await handle.result()

    async def start_update(
        self,
        update: str | Callable[..., Any],
        arg: Any = _NO_ARG,
        *,
        wait_for_stage: WorkflowUpdateStage,
        args: Sequence[Any] = (),
        id: str | None = None,
        result_type: Any = None,
    ) -> WorkflowUpdateHandle[Any]:
        """Sends an update and returns once it reached ``wait_for_stage``
        (``ACCEPTED``: validated, recorded and its handler started). The
        handle's ``result()`` waits for the outcome. Raises like
        :meth:`execute_update` (a rejection is raised here)."""
        name, ret = _update_name(update)
        if arg is not _NO_ARG:
            if args:
                raise ValueError("pass either one positional arg or args=[...], not both")
            args = [arg]
        update_id = id or str(uuid.uuid4())
        body: dict[str, Any] = {
            "args": [to_json(a) for a in args],
            "update_id": update_id,
            "wait_for_stage": wait_for_stage.name,
        }
        resp: _http.Response | None = None
        rejection: dict[str, Any] = {}
        try:
            resp = await self._run_call(
                "update", f"/update/{quote(name, safe='')}", body, timeout=_UPDATE_TIMEOUT
            )
        except RPCError as err:
            if err.status != 400 or err.code != "update_rejected":
                raise
            rejection = (err.problem or {}).get("failure") or {"message": err.detail or ""}
        if resp is None:
            # Raised outside the except clause: the cause is the
            # validator's error, not the HTTP one.
            raise WorkflowUpdateFailedError(failure_to_error(rejection))
        data = resp.json_object()
        handle: WorkflowUpdateHandle[Any] = WorkflowUpdateHandle(
            self._client,
            self.id,
            update_id,
            name=name,
            workflow_run_id=cast("str | None", data.get("run_id")) or self.run_id,
            result_type=result_type if result_type is not None else ret,
        )
        handle._outcome = data
        await handle._wait(wait_for_stage)
        return handle

    def get_update_handle(
        self, id: str, *, workflow_run_id: str | None = None, result_type: Any = None
    ) -> WorkflowUpdateHandle[Any]:
        """A handle to an update sent earlier (by any client), by its id."""
        return WorkflowUpdateHandle(
            self._client,
            self.id,
            id,
            workflow_run_id=workflow_run_id or self.run_id,
            result_type=result_type,
        )

    async def cancel(self, *, reason: str | None = None, request_id: str | None = None) -> None:
        """Requests cancellation: the workflow gets ``asyncio.CancelledError``,
        may clean up, and closes as CANCELED (``result()`` then raises
        :class:`WorkflowFailureError` with a :class:`CancelledError` cause).
        A second request while one is pending is a no-op. Raises
        :class:`WorkflowNotFoundError` or :class:`WorkflowAlreadyCompletedError`."""
        body: dict[str, Any] = {}
        if reason:
            body["reason"] = reason
        if request_id:
            body["request_id"] = request_id
        await self._run_call("cancel", "/cancel", body)


def _signal_name(signal: str | Callable[..., Any]) -> str:
    if isinstance(signal, str):
        return signal
    defn = getattr(signal, "__baton_signal__", None)
    name = getattr(defn, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"{signal!r} is not a named @workflow.signal handler; pass its name")
    return name


def _update_name(update: str | Callable[..., Any]) -> tuple[str, Any]:
    """The update's name and the return type its result is decoded by."""
    if isinstance(update, str):
        return update, None
    defn = getattr(update, "__baton_update__", None)
    name = getattr(defn, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"{update!r} is not a named @workflow.update handler; pass its name")
    return name, getattr(defn, "ret_type", None)


class WorkflowUpdateStage(IntEnum):
    """How far an update got (``temporalio.client.WorkflowUpdateStage``):
    recorded, its handler started, its handler finished."""

    ADMITTED = 1
    ACCEPTED = 2
    COMPLETED = 3


class WorkflowUpdateHandle(Generic[_R]):
    """An update of a workflow: ``result()`` waits for its outcome."""

    def __init__(
        self,
        client: Client,
        workflow_id: str,
        id: str,
        *,
        name: str | None = None,
        workflow_run_id: str | None = None,
        result_type: Any = None,
    ) -> None:
        self._client = client
        self.workflow_id = workflow_id
        self.id = id
        self.name = name
        self.workflow_run_id = workflow_run_id
        self._result_type = result_type
        self._outcome: dict[str, Any] = {}

    async def result(self) -> _R:
        """Waits for the handler to finish and returns its result. Raises
        :class:`WorkflowUpdateFailedError` if it raised, or
        :class:`WorkflowAlreadyCompletedError` if the run closed first."""
        await self._wait(WorkflowUpdateStage.COMPLETED)
        failure = self._outcome.get("failure")
        if isinstance(failure, dict):
            raise WorkflowUpdateFailedError(failure_to_error(cast("dict[str, Any]", failure)))
        return cast(_R, from_json(self._outcome.get("result"), self._result_type))

    async def _wait(self, stage: WorkflowUpdateStage) -> None:
        """Polls the server (each call waits up to its bound) until the
        update reached ``stage``."""
        while WorkflowUpdateStage[str(self._outcome.get("stage", "ADMITTED"))] < stage:
            query = {"wait_for_stage": stage.name}
            if self.workflow_run_id:
                query["run_id"] = self.workflow_run_id
            path = (
                f"/workflows/{quote(self.workflow_id, safe='')}"
                f"/updates/{quote(self.id, safe='')}?{urlencode(query)}"
            )
            try:
                resp = await self._client._call("GET", path, timeout=_UPDATE_TIMEOUT)
            except RPCError as err:
                if err.status == 404:
                    raise WorkflowNotFoundError(
                        f"update {self.id!r} of workflow {self.workflow_id!r}: {err.detail}",
                        workflow_id=self.workflow_id,
                        run_id=self.workflow_run_id,
                    ) from err
                if err.status == 409 and err.code == "conflict":
                    raise WorkflowAlreadyCompletedError(
                        f"update {self.id!r}: {err.detail}",
                        workflow_id=self.workflow_id,
                        run_id=self.workflow_run_id,
                    ) from err
                raise
            self._outcome = resp.json_object()
            self.workflow_run_id = self.workflow_run_id or self._outcome.get("run_id")


def _query_name(query: str | Callable[..., Any]) -> tuple[str, Any]:
    """The query's name and the return type its answer is decoded by."""
    if isinstance(query, str):
        return query, None
    defn = getattr(query, "__baton_query__", None)
    name = getattr(defn, "name", None)
    if not isinstance(name, str):
        raise TypeError(f"{query!r} is not a named @workflow.query handler; pass its name")
    return name, getattr(defn, "ret_type", None)


class AsyncActivityHandle:
    """Finishes an activity that answered its push with 202."""

    def __init__(self, client: Client, task_token: str) -> None:
        self._client = client
        self.task_token = task_token

    async def complete(self, result: Any = None) -> None:
        await self._client._call(
            "POST",
            "/activities/complete",
            {"task_token": self.task_token, "result": to_json(result)},
        )

    async def fail(self, error: BaseException, *last_heartbeat_details: Any) -> None:
        del last_heartbeat_details
        await self._client._call(
            "POST",
            "/activities/fail",
            {
                "task_token": self.task_token,
                "failure": error_to_failure(error, include_stack=False),
            },
        )

    async def heartbeat(self, *details: Any) -> bool:
        """Records details; returns True when cancellation was requested."""
        resp = await self._client._call(
            "POST",
            "/activities/heartbeat",
            {"task_token": self.task_token, "details": [to_json(d) for d in details]},
        )
        return bool(resp.json_object().get("cancel_requested"))

    async def report_cancellation(self, *details: Any) -> None:
        await self._client._call(
            "POST",
            "/activities/cancel",
            {"task_token": self.task_token, "details": [to_json(d) for d in details]},
        )
