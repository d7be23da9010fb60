"""Batch operations: the types of ``Client.start_batch_operation`` and
its describe, list and stop calls (exported from :mod:`baton.client`).

Named after Temporal's batch API (``StartBatchOperation``,
``BatchOperationTermination``, ``BatchOperationSignal``, …,
``DescribeBatchOperationResponse``'s counts), as dataclasses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Union, cast

from baton._protocol import parse_timestamp
from baton.converter import to_json


class BatchOperationState(str, Enum):
    """Where a batch job is (Temporal's ``BatchOperationState``, plus ``STOPPED``)."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    #: The job could not go on (its stored query no longer checks).
    FAILED = "FAILED"
    #: Stopped by ``stop_batch_operation`` before it was done.
    STOPPED = "STOPPED"


class BatchResetType(str, Enum):
    """Which completed workflow task a reset batch goes back to."""

    FIRST_WORKFLOW_TASK = "FIRST_WORKFLOW_TASK"
    LAST_WORKFLOW_TASK = "LAST_WORKFLOW_TASK"


@dataclass(frozen=True)
class BatchOperationTermination:
    """Terminate every matching run."""


@dataclass(frozen=True)
class BatchOperationCancellation:
    """Request cancellation of every matching run (its code decides how it closes)."""


@dataclass(frozen=True)
class BatchOperationSignal:
    """Send every matching run the signal ``signal`` with ``args`` (as
    ``WorkflowHandle.signal`` sends them), once per run."""

    signal: str
    args: Sequence[Any] = ()


@dataclass(frozen=True)
class BatchOperationReset:
    """Reset every matching run to its first or last completed workflow task."""

    reset_type: BatchResetType = BatchResetType.LAST_WORKFLOW_TASK


@dataclass(frozen=True)
class BatchOperationDeletion:
    """Delete every matching closed run (an open one counts as a failure)."""


BatchOperation = Union[
    BatchOperationTermination,
    BatchOperationCancellation,
    BatchOperationSignal,
    BatchOperationReset,
    BatchOperationDeletion,
]


def operation_to_wire(op: BatchOperation) -> dict[str, Any]:
    """The ``operation`` of a start request and the members it brings."""
    if isinstance(op, BatchOperationTermination):
        return {"operation": "terminate"}
    if isinstance(op, BatchOperationCancellation):
        return {"operation": "cancel"}
    if isinstance(op, BatchOperationSignal):
        return {
            "operation": "signal",
            "signal_name": op.signal,
            "input": [to_json(a) for a in op.args],
        }
    if isinstance(op, BatchOperationReset):
        return {"operation": "reset", "reset_type": BatchResetType(op.reset_type).value}
    if isinstance(op, BatchOperationDeletion):  # pyright: ignore[reportUnnecessaryIsInstance]
        return {"operation": "delete"}
    raise TypeError(f"not a batch operation: {op!r}")


@dataclass(frozen=True)
class BatchOperationFailure:
    """A run the operation failed on, and why."""

    workflow_id: str
    run_id: str
    reason: str


@dataclass(frozen=True)
class BatchOperationDescription:
    """A batch job and its progress (Temporal's ``DescribeBatchOperationResponse``)."""

    job_id: str
    state: BatchOperationState
    operation: str
    query: str
    reason: str
    #: Runs per second, as capped by the server.
    rps: float
    #: Runs the query matched when the job started.
    total_operation_count: int
    #: Runs the operation was applied to.
    complete_operation_count: int
    failure_operation_count: int
    start_time: datetime
    close_time: datetime | None = None
    identity: str | None = None
    stop_requested: bool = False
    #: The first 20 failures.
    failures: list[BatchOperationFailure] = field(default_factory=lambda: [])

    @staticmethod
    def _from_wire(d: dict[str, Any]) -> BatchOperationDescription:
        failures = cast("list[dict[str, Any]]", d.get("failures") or [])
        closed = d.get("closed_at")
        return BatchOperationDescription(
            job_id=d["batch_id"],
            state=BatchOperationState(d["state"]),
            operation=d["operation"],
            query=d["query"],
            reason=d.get("reason", ""),
            rps=float(d["rps"]),
            total_operation_count=int(d["total"]),
            complete_operation_count=int(d["done"]),
            failure_operation_count=int(d["failed"]),
            start_time=parse_timestamp(d["created_at"]),
            close_time=parse_timestamp(closed) if closed else None,
            identity=d.get("identity"),
            stop_requested=bool(d.get("stop_requested")),
            failures=[
                BatchOperationFailure(f["workflow_id"], f["run_id"], f["reason"]) for f in failures
            ],
        )
