"""Detects non-deterministic calls made by workflow code.

While the workflow loop runs user code it installs a profile function
(``sys.setprofile``) on its own thread. The profile function sees every call
into C code; calls that read the wall clock, global randomness or do
blocking IO raise :class:`RestrictedWorkflowAccessError` in the workflow.

Why a profile hook rather than patching ``time.time`` and friends: patching
misses names bound before the patch (``from datetime import datetime``;
``datetime.now`` cannot be patched on the C type at all), and patching
module globals affects every thread of the process, so activities or a web
framework running concurrently would need a context check in every patched
function. A profile function is per thread, catches the call however it was
spelled, and costs nothing outside workflow code. Calls made from the
standard library's logging, tracebacks and import machinery are allowed
(a log record reads the clock; ``workflow.logger`` is replay-aware).

The check can be switched off per app (``App(..., determinism_checks=False)``)
to trade the safety net for speed.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import io
import os
import random
import socket
import sys
import time
from types import FrameType
from typing import Any

from baton.exceptions import RestrictedWorkflowAccessError

_HINT_TIME = "use workflow.now() or workflow.time()"
_HINT_RANDOM = "use workflow.random() or workflow.uuid4()"
_HINT_IO = "do IO in an activity"
_HINT_SLEEP = "use asyncio.sleep() or workflow.sleep(), which are durable timers"

_FORBIDDEN_FUNCTIONS: dict[int, tuple[str, str]] = {}


def _forbid(fn: Any, name: str, hint: str) -> None:
    _FORBIDDEN_FUNCTIONS[id(fn)] = (name, hint)


for _name in ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"):
    _forbid(getattr(time, _name), f"time.{_name}", _HINT_TIME)
_forbid(time.sleep, "time.sleep", _HINT_SLEEP)
_forbid(os.urandom, "os.urandom", _HINT_RANDOM)
if hasattr(os, "getrandom"):
    _forbid(os.getrandom, "os.getrandom", _HINT_RANDOM)
_forbid(builtins.open, "open", _HINT_IO)
_forbid(io.open, "io.open", _HINT_IO)
_forbid(getattr(os, "system"), "os.system", _HINT_IO)  # noqa: B009 - typeshed marks it deprecated
_forbid(socket.getaddrinfo, "socket.getaddrinfo", _HINT_IO)

# Keep the objects alive so their ids stay unique.
_KEEP = (time, os, builtins, io, socket)

_CLOCK_METHODS = frozenset({"now", "utcnow", "today"})
_SOCKET_METHODS = frozenset(
    {
        "connect",
        "connect_ex",
        "send",
        "sendall",
        "sendto",
        "recv",
        "recv_into",
        "recvfrom",
        "_accept",
    }
)
_GLOBAL_RANDOM: Any = getattr(random, "_inst", None)

# Frames of these modules may call anything: they read the clock for log
# records, open source files for tracebacks, or import modules.
_ALLOWED_CALLER_PREFIXES = (
    "logging",
    "linecache",
    "tokenize",
    "traceback",
    "importlib",
    "_frozen_importlib",
    "zipimport",
    "warnings",
    "baton.",
)


def _caller_allowed(frame: FrameType) -> bool:
    name = frame.f_globals.get("__name__", "")
    return isinstance(name, str) and name.startswith(_ALLOWED_CALLER_PREFIXES)


def _violation(arg: Any) -> tuple[str, str] | None:
    hit = _FORBIDDEN_FUNCTIONS.get(id(arg))
    if hit is not None:
        return hit
    owner = getattr(arg, "__self__", None)
    if owner is None:
        return None
    name = getattr(arg, "__name__", "")
    if isinstance(owner, type):
        if name in _CLOCK_METHODS and issubclass(owner, _dt.date):
            return f"{owner.__name__}.{name}", _HINT_TIME
        return None
    if owner is _GLOBAL_RANDOM:
        return f"random.{name}", _HINT_RANDOM
    if isinstance(owner, socket.socket) and name in _SOCKET_METHODS:
        return f"socket.{name}", _HINT_IO
    return None


def guard(frame: FrameType, event: str, arg: Any) -> None:
    """The profile function installed while workflow code runs."""
    if event != "c_call":
        return
    hit = _violation(arg)
    if hit is None or _caller_allowed(frame):
        return
    raise RestrictedWorkflowAccessError(hit[0] + "()", hit[1])


def install() -> Any:
    """Installs the guard on this thread; returns the previous profile function."""
    previous = sys.getprofile()
    sys.setprofile(guard)
    return previous


def uninstall(previous: Any) -> None:
    sys.setprofile(previous)
