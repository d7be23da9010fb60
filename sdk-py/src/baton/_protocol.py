"""Wire types of the push protocol and the REST API (docs/protocol.md).

The server's Rust types are the source of truth (``src/dispatch/wire.rs``,
``src/engine/{command,event,failure}.rs``); these TypedDicts mirror them so
that the rest of the SDK reads wire data with names, not guesses.

Durations travel as strings in seconds (``"1.5s"``); timestamps as RFC 3339
with milliseconds (``"2024-01-01T00:00:00.123Z"``).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal, TypedDict

if TYPE_CHECKING:  # typing.NotRequired is 3.11+; annotations stay strings at runtime
    from typing_extensions import NotRequired

JSON = Any
"""A value that ``json`` can encode (the SDK's converter produces them)."""


class FailureDict(TypedDict, total=False):
    message: str
    type: str
    non_retryable: bool
    details: JSON
    stack_trace: str
    timeout_type: str
    cause: FailureDict
    #: APPLICATION (the default when absent), TIMEOUT, CANCELED, TERMINATED,
    #: SERVER, ACTIVITY or CHILD_WORKFLOW_EXECUTION (protocol.md §5.3.1).
    kind: str
    activity_failure_info: dict[str, Any]
    child_workflow_execution_failure_info: dict[str, Any]


class EventDict(TypedDict):
    event_id: int
    event_time: str
    event_type: str
    attributes: dict[str, Any]


class WorkflowTaskRequest(TypedDict):
    type: Literal["workflow_task"]
    namespace: str
    task_token: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_queue: str
    attempt: int
    history: list[EventDict]
    history_length: int
    history_size_bytes: int
    suggest_continue_as_new: bool
    #: When the server stops waiting for the push's answer (RFC 3339).
    deadline: NotRequired[str]
    #: Where inline activities' checkpoints go (docs/protocol.md §5.9).
    checkpoint_url: NotRequired[str]
    #: The page route (on every workflow task push of a server that pages,
    #: docs/protocol.md §5.10), and, when ``history`` does not start at
    #: event 1, its first event's id and the reference of the older ones.
    history_url: NotRequired[str]
    history_first_event_id: NotRequired[int]
    history_reference: NotRequired[str]


class ActivityTaskRequest(TypedDict):
    type: Literal["activity_task"]
    namespace: str
    task_token: str
    workflow_id: str
    run_id: str
    workflow_type: str
    activity_id: str
    activity_type: str
    task_queue: str
    input: JSON
    attempt: int
    idempotency_key: str
    scheduled_time: str
    started_time: str
    deadline: str
    heartbeat_timeout: NotRequired[str]
    heartbeat_details: NotRequired[JSON]


class CommandDict(TypedDict):
    command_type: str
    attributes: dict[str, Any]


# --- durations and timestamps ------------------------------------------------

_DURATION_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "days": 86400.0,
}
_DURATION_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]+)\s*$")


def format_duration(value: timedelta | float) -> str:
    """A duration in the server's wire form, rounded up to the millisecond.

    The server keeps durations in whole milliseconds; rounding up means a
    timer never fires earlier than asked.
    """
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0 or math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"invalid duration: {value!r}")
    millis = math.ceil(round(seconds * 1000, 6))
    whole, frac = divmod(millis, 1000)
    if frac == 0:
        return f"{whole}s"
    return f"{whole}.{frac:03d}".rstrip("0") + "s"


def parse_duration(text: str) -> timedelta:
    """Parses ``"1.5s"``, ``"500ms"``, ``"10m"``, ``"2h"``."""
    m = _DURATION_RE.match(text)
    if not m or m.group(2) not in _DURATION_UNITS:
        raise ValueError(f"invalid duration {text!r}")
    return timedelta(seconds=float(m.group(1)) * _DURATION_UNITS[m.group(2)])


def parse_timestamp(text: str) -> datetime:
    """RFC 3339 (the server writes ``...Z`` with milliseconds) to an aware UTC datetime."""
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    # Python 3.10's fromisoformat accepts 3 or 6 fractional digits only.
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$", t)
    if m:
        frac = (m.group(2) or "")[:6].ljust(6, "0") if m.group(2) else ""
        t = m.group(1) + (f".{frac}" if frac else "") + m.group(3)
    dt = datetime.fromisoformat(t)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def format_timestamp(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
