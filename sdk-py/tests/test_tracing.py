"""W3C trace context end to end: a client call made inside an
OpenTelemetry span sends its ``traceparent``; ``baton dev`` stores it with
the run and pushes it, and the app runs the activity inside a span of that
trace (opentelemetry-api and -sdk installed, spans kept in memory). Without
an active span nothing is sent and nothing breaks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import pytest

from baton import App, activity, workflow
from baton.testing import AppServer, WorkflowEnvironment, find_baton_binary
from tests.conftest import SECRET, needs_baton

otel_trace = pytest.importorskip("opentelemetry.trace")
sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
sdk_export = pytest.importorskip("opentelemetry.sdk.trace.export")
in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")

pytestmark = needs_baton

EXPORTER = in_memory.InMemorySpanExporter()
_provider = sdk_trace.TracerProvider()
_provider.add_span_processor(sdk_export.SimpleSpanProcessor(EXPORTER))
otel_trace.set_tracer_provider(_provider)
TRACER = otel_trace.get_tracer("tests")

seen: dict[str, tuple[int, int]] = {}


@activity.defn(name="traced_step")
async def traced_step(key: str) -> str:
    ctx = otel_trace.get_current_span().get_span_context()
    seen[key] = (ctx.trace_id, ctx.span_id)
    return key


@workflow.defn
class Traced:
    @workflow.run
    async def run(self, key: str) -> str:
        return await workflow.execute_activity(
            traced_step, key, start_to_close_timeout=timedelta(seconds=10)
        )


@pytest.fixture(scope="module")
def tracing_env() -> Iterator[WorkflowEnvironment]:
    e = asyncio.run(WorkflowEnvironment.start_local(binary=find_baton_binary()))
    # The pushed activity path: its handling span is what the test follows
    # (inline attempts run inside the workflow task's push).
    app = App(
        workflows=[Traced],
        activities=[traced_step],
        signing_secret=SECRET,
        inline_activities=False,
    )
    with AppServer(app) as server:
        asyncio.run(e.register_endpoint("traced", server.url, SECRET))
        try:
            yield e
        finally:
            asyncio.run(e.shutdown())


@pytest.fixture
async def client(tracing_env: WorkflowEnvironment) -> AsyncIterator[Any]:
    yield tracing_env.client


async def test_the_activity_runs_in_the_clients_trace(client: Any) -> None:
    keys = [f"traced-{i}" for i in range(10)]
    traces: dict[str, int] = {}

    async def run(key: str) -> str:
        with TRACER.start_as_current_span(f"client {key}") as span:
            traces[key] = span.get_span_context().trace_id
            return await client.execute_workflow(Traced.run, key, id=key, task_queue="traced")

    # Many runs at once, each in its own trace.
    assert await asyncio.gather(*(run(k) for k in keys)) == keys
    for key in keys:
        trace_id, span_id = seen[key]
        assert trace_id == traces[key], key
        assert span_id != 0
    # The app's span of each push is recorded, parented in that trace.
    handled = [s for s in EXPORTER.get_finished_spans() if s.name == "baton activity_task"]
    by_trace = {s.context.trace_id: s for s in handled}
    for key in keys:
        span = by_trace[traces[key]]
        assert span.kind == otel_trace.SpanKind.SERVER
        assert span.parent is not None and span.parent.is_remote
        assert span.context.span_id == seen[key][1]


async def test_no_active_span_no_trace(client: Any) -> None:
    assert otel_trace.get_current_span().get_span_context().is_valid is False
    result = await client.execute_workflow(
        Traced.run, "untraced", id="untraced", task_queue="traced"
    )
    assert result == "untraced"
    # The server exports nothing here, and the run had no trace context:
    # the push carried none, and the activity ran outside any trace.
    assert seen["untraced"] == (0, 0)
