"""W3C Trace Context through the optional OpenTelemetry API package
(``opentelemetry-api``): the client sends the active context's
``traceparent`` with its calls, and the endpoint app runs each push inside
the context the server sent with it (``traceparent`` of the server's push
span), so the handler's spans join the trace the run was started in.

Nothing happens when the package is not installed: it is imported on first
use, and its absence is remembered.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Generator, Mapping
from types import ModuleType
from typing import Any

# Module name -> the module, or None once its import failed.
_modules: dict[str, ModuleType | None] = {}


def _module(name: str) -> Any:
    if name not in _modules:
        try:
            _modules[name] = importlib.import_module(name)
        except ImportError:
            _modules[name] = None
    return _modules[name]


def inject(headers: dict[str, str]) -> None:
    """Adds ``traceparent`` (and ``tracestate``) of the active context,
    when there is one and OpenTelemetry is installed."""
    propagate = _module("opentelemetry.propagate")
    if propagate is not None:
        propagate.inject(headers)


@contextlib.contextmanager
def continued(headers: Mapping[str, str], name: str) -> Generator[None]:
    """Runs the body in a ``name`` span (kind SERVER) whose parent is the
    context ``headers`` carry; a no-op without OpenTelemetry."""
    propagate = _module("opentelemetry.propagate")
    trace = _module("opentelemetry.trace")
    if propagate is None or trace is None or "traceparent" not in headers:
        yield
        return
    parent = propagate.extract(dict(headers))
    tracer = trace.get_tracer("baton")
    with tracer.start_as_current_span(name, context=parent, kind=trace.SpanKind.SERVER):
        yield
