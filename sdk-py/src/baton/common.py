"""Types shared by workflows, activities and the client (as
``temporalio.common``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any

from baton._protocol import format_duration, parse_duration


@dataclass
class RetryPolicy:
    """Temporal's retry policy. Unset fields take the server's defaults:
    initial interval 1 s, coefficient 2.0, maximum interval 100 × initial,
    unlimited attempts."""

    initial_interval: timedelta = field(default_factory=lambda: timedelta(seconds=1))
    backoff_coefficient: float = 2.0
    maximum_interval: timedelta | None = None
    maximum_attempts: int = 0
    """Zero means unlimited."""
    non_retryable_error_types: Sequence[str] | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "initial_interval": format_duration(self.initial_interval),
            "backoff_coefficient": float(self.backoff_coefficient),
        }
        if self.maximum_interval is not None:
            out["maximum_interval"] = format_duration(self.maximum_interval)
        if self.maximum_attempts:
            out["maximum_attempts"] = int(self.maximum_attempts)
        if self.non_retryable_error_types:
            out["non_retryable_error_types"] = list(self.non_retryable_error_types)
        return out

    @staticmethod
    def from_wire(d: dict[str, Any]) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=parse_duration(d.get("initial_interval", "1s")),
            backoff_coefficient=float(d.get("backoff_coefficient", 2.0)),
            maximum_interval=parse_duration(d["maximum_interval"])
            if d.get("maximum_interval")
            else None,
            maximum_attempts=int(d.get("maximum_attempts", 0)),
            non_retryable_error_types=list(d.get("non_retryable_error_types") or []) or None,
        )


class WorkflowIDReusePolicy(str, Enum):
    """What a start does when the id's latest run is closed."""

    ALLOW_DUPLICATE = "ALLOW_DUPLICATE"
    ALLOW_DUPLICATE_FAILED_ONLY = "ALLOW_DUPLICATE_FAILED_ONLY"
    REJECT_DUPLICATE = "REJECT_DUPLICATE"
    TERMINATE_IF_RUNNING = "TERMINATE_IF_RUNNING"


class WorkflowIDConflictPolicy(str, Enum):
    """What a start does when the id's latest run is still open."""

    FAIL = "FAIL"
    USE_EXISTING = "USE_EXISTING"
    TERMINATE_EXISTING = "TERMINATE_EXISTING"


class WorkflowExecutionStatus(str, Enum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TERMINATED = "TERMINATED"
    CONTINUED_AS_NEW = "CONTINUED_AS_NEW"
    TIMED_OUT = "TIMED_OUT"
