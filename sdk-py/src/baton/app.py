"""Serving workflows and activities: :class:`App`, an ASGI application and
an AWS Lambda handler around one framework-agnostic core (:meth:`App.handle`).

One URL serves everything: the server POSTs a signed push whose JSON body
says what it is (``workflow_task``, ``query``, ``update_validation`` or
``activity_task``); a GET describes
the workflows and activities served. Every push is verified first (Standard
Webhooks); an unsigned, forged or stale one is answered 401 without parsing
the body or running any code.

Where a push runs: a workflow task, query or update validation replays the
history on the serving event loop itself (the replay is short, CPU-only and
deterministic, and runs on a loop of its own that it sets and restores), so
a push never waits for a thread. Only a replay of more than
``inline_replay_max_events`` events goes to a small thread pool, so that one
long history cannot hold the loop for tens of milliseconds. Async
activities run on the serving loop; sync ones on ``activity_executor``.

Inline activities: when a workflow task schedules activities this app
registers, the app runs them itself inside the same push and goes on with
the workflow, checkpointing each step (:mod:`baton._inline`).

Sticky cache and history pages: the ASGI app keeps the workflow instance
of a task it answered for the run's next task, which the server then
pushes with only the new events (:mod:`baton._sticky`); a push that lacks
older events the app needs pages them in (:mod:`baton._pages`).

Payloads by reference: the payloads a server stored apart are put in place
before workflow or activity code runs (:mod:`baton._payloads`).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextvars
import functools
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from baton import _signing, _tracing
from baton._activity_runner import ServerAccess, run_activity
from baton._inline import DEFAULT_MAX_INLINE_ATTEMPTS, InlineConfig, PushTiming, Slots
from baton._local_activity import WorkflowTaskConfig, run_workflow_task
from baton._pages import HistoryUnavailable, Pager
from baton._payloads import PayloadUnavailable, Resolver
from baton._protocol import ActivityTaskRequest, WorkflowTaskRequest
from baton._schema import args_schema
from baton._sticky import DEFAULT_MAX_CACHED_WORKFLOWS, WorkflowCache, WorkflowCacheStats
from baton._workflow_instance import (
    handle_query,
    handle_update_validation,
)
from baton.activity import _Definition as _ActivityDefinition
from baton.workflow import _Definition as _WorkflowDefinition
from baton.workflow import _definitions

log = logging.getLogger("baton.app")

__all__ = ["App", "Response", "WorkflowCacheStats"]

SDK_NAME = "baton-sdk-python"
SDK_VERSION = "0.1.0"
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
# A replay costs about 7-16 us per event with determinism checks (3-4 us
# without): at 500 events up to ~8 ms on the serving loop, about what a hop
# to a thread costs a push under load. Longer ones go to the replay pool.
DEFAULT_INLINE_REPLAY_MAX_EVENTS = 500
# Under the GIL, threads add no parallelism to CPU-bound replays; every
# extra busy thread makes the serving loop wait up to one switch interval
# (5 ms) more for the GIL. Two keeps one long replay from queueing behind
# another without starving the loop.
REPLAY_POOL_THREADS = 2
# What the description lists under ``features`` (docs/protocol.md §1.5).
FEATURES = ("history_pages", "payload_references")
# How long a query or update validation may page in its history: the
# server waits at most 10 s for their answer (§5.5).
SYNC_PUSH_BUDGET = 10.0

ASGIScope = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[MutableMapping[str, Any]]]
ASGISend = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass
class Response:
    """What :meth:`App.handle` answers; the adapters translate it."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})

    @staticmethod
    def json(status: int, value: Any) -> Response:
        return Response(status, json.dumps(value, separators=(",", ":")).encode())


def _secrets_from(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        env = os.environ.get("BATON_SIGNING_SECRET", "")
        return [s for s in env.replace(",", " ").split() if s]
    if isinstance(value, str):
        return [value]
    return list(value)


class App:
    """Serves workflows and activities to a Baton server.

    ``signing_secret`` is the endpoint's ``whsec_…`` secret, or a list of
    them while rotating (default: ``BATON_SIGNING_SECRET``, comma or space
    separated). ``server_url`` and ``api_key`` (default: ``BATON_SERVER_URL``,
    ``BATON_API_KEY``) are needed only for ``activity.heartbeat`` and for
    activity inputs stored by reference that a push does not inline.
    Workflow tasks, queries and update validations replay on the serving
    event loop when the history has at most ``inline_replay_max_events``
    events (default 500; 0 sends every replay to the pool), else on a
    two-thread pool of their own; sync activities run on
    ``activity_executor`` (default: a 64-thread pool).

    ``inline_activities`` (default on): a workflow task that schedules
    activities this app registers runs them here, in the same push, and
    goes on with the workflow, committing each step to the server with a
    signed checkpoint; at most ``max_inline_attempts`` inline attempts run
    at once. ``checkpoint_base_url`` replaces the base of the server's
    ``checkpoint_url`` and ``history_url`` (when the server is reached
    under another address), and of the payload route (payloads stored by
    reference and not inlined in a push, docs/protocol.md §9.1, which an
    activity push names in ``payloads_url``; an older server's names none,
    and then this base, else ``server_url``, is used).

    ``max_cached_workflows`` (default 1000; 0 turns it off): as an ASGI
    app, after a workflow task answered with commands the app keeps the
    run's workflow instance in memory (least recently used out first) and
    answers ``sticky``, so that the server pushes the run's next task with
    only the new events and the workflow goes on without a replay
    (docs/protocol.md §5.10; :attr:`workflow_cache_stats` counts what it
    did). The Lambda handler keeps none.

    Use it as an ASGI app (``uvicorn module:app``), mount it in FastAPI or
    Starlette, or point AWS Lambda at ``app.lambda_handler``.
    """

    def __init__(
        self,
        *,
        workflows: Sequence[type] = (),
        activities: Sequence[Callable[..., Any]] = (),
        signing_secret: str | Sequence[str] | None = None,
        server_url: str | None = None,
        api_key: str | None = None,
        determinism_checks: bool = True,
        activity_executor: concurrent.futures.Executor | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        inline_replay_max_events: int = DEFAULT_INLINE_REPLAY_MAX_EVENTS,
        inline_activities: bool = True,
        max_inline_attempts: int = DEFAULT_MAX_INLINE_ATTEMPTS,
        checkpoint_base_url: str | None = None,
        max_cached_workflows: int = DEFAULT_MAX_CACHED_WORKFLOWS,
    ) -> None:
        self._workflows: Mapping[str, _WorkflowDefinition] = _definitions(workflows)
        acts: dict[str, _ActivityDefinition] = {}
        for fn in activities:
            d = _ActivityDefinition.of(fn)
            if d.name in acts:
                raise ValueError(f"activity {d.name!r} is registered twice")
            acts[d.name] = d
        self._activities: Mapping[str, _ActivityDefinition] = acts
        secrets = _secrets_from(signing_secret)
        if not secrets:
            raise ValueError(
                "App needs signing_secret (the endpoint's whsec_... secret) or BATON_SIGNING_SECRET"
            )
        self._keys = [_signing.parse_secret(s) for s in secrets]
        url = server_url or os.environ.get("BATON_SERVER_URL") or None
        self._server = ServerAccess(
            url=url.rstrip("/") if url else None,
            api_key=api_key or os.environ.get("BATON_API_KEY") or None,
        )
        self._checks = determinism_checks
        # Separate pools, so that long sync activities can never starve
        # workflow tasks (whose answers have a deadline).
        self._executor = activity_executor or concurrent.futures.ThreadPoolExecutor(
            max_workers=64, thread_name_prefix="baton-activity"
        )
        if inline_replay_max_events < 0:
            raise ValueError("inline_replay_max_events must be >= 0")
        self._inline_max = inline_replay_max_events
        self._workflow_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=REPLAY_POOL_THREADS, thread_name_prefix="baton-workflow"
        )
        self._max_body = max_body_bytes
        if max_inline_attempts < 0:
            raise ValueError("max_inline_attempts must be >= 0")
        self._inline: InlineConfig | None = None
        if inline_activities:
            self._inline = InlineConfig(
                activities=self._activities,
                keys=self._keys,
                server=self._server,
                executor=self._executor,
                base_url=checkpoint_base_url,
                slots=Slots(max_inline_attempts),
                identity=f"{SDK_NAME}@{socket.gethostname()}:{os.getpid()}",
            )
        self._pager = Pager(self._keys, checkpoint_base_url)
        self._resolver = Resolver(self._keys, checkpoint_base_url, self._server.url)
        self._tasks = WorkflowTaskConfig(
            activities=self._activities,
            workflow_pool=self._workflow_pool,
            inline_replay_max_events=self._inline_max,
            activity_executor=self._executor,
            determinism_checks=self._checks,
            pager=self._pager,
            resolver=self._resolver,
            inline=self._inline,
            cache=WorkflowCache(max_cached_workflows),
        )
        # One loop per thread: Lambda runs one invocation at a time per
        # process, but a local emulator or a test may call from threads.
        self._lambda = threading.local()

    @property
    def workflow_cache_stats(self) -> WorkflowCacheStats:
        """What the sticky cache (``max_cached_workflows``), history paging
        and payload fetching did since the app started."""
        cache = self._tasks.cache
        return WorkflowCacheStats(
            cached=len(cache),
            hits=cache.hits,
            misses=cache.misses,
            evictions=cache.evictions,
            history_pages=self._pager.pages,
            payloads_fetched=self._resolver.fetched,
        )

    # --- the core ------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """What a GET answers: the served workflow and activity types."""
        return {
            "sdk": {"name": SDK_NAME, "version": SDK_VERSION},
            "workflows": [d.describe() for d in self._workflows.values()],
            "activities": [{"name": n} for n in self._activities],
            "features": list(FEATURES),
            "schemas": self._schemas(),
        }

    def _schemas(self) -> dict[str, Any]:
        """The payload schemas of the served types, from their type hints
        (docs/protocol.md §1.5); a type or handler without any is absent."""
        workflows: dict[str, Any] = {}
        for name, d in self._workflows.items():
            w: dict[str, Any] = {}
            run = args_schema(d.run_fn, d.arg_types)
            if run is not None:
                w["input"] = run
            kinds: list[tuple[str, Mapping[str | None, Any]]] = [
                ("signals", d.signals),
                ("updates", d.updates),
                ("queries", d.queries),
            ]
            for kind, handlers in kinds:
                found = {
                    n: sc
                    for n, h in handlers.items()
                    if n and (sc := args_schema(h.fn, h.arg_types)) is not None
                }
                if found:
                    w[kind] = found
            if w:
                workflows[name] = w
        activities = {
            n: {"input": sc}
            for n, a in self._activities.items()
            if (sc := args_schema(a.fn, a.arg_types)) is not None
        }
        out: dict[str, Any] = {}
        if workflows:
            out["workflows"] = workflows
        if activities:
            out["activities"] = activities
        return out

    async def handle(
        self, method: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
    ) -> Response:
        """Handles one request. ``headers`` must have lower-case names."""
        return await self._handle(method, headers, body, now=now)

    async def _handle(
        self,
        method: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: float | None = None,
        serverless: bool = False,
        platform_deadline: float | None = None,
    ) -> Response:
        """:meth:`handle`; ``serverless`` when the process may freeze once it
        answers, ``platform_deadline`` (monotonic) when the platform stops
        this invocation."""
        received = time.monotonic()
        method = method.upper()
        if method in ("GET", "HEAD"):
            r = Response.json(200, self.describe())
            return Response(200, b"", r.headers) if method == "HEAD" else r
        if method != "POST":
            return Response.json(405, {"error": "method not allowed"})
        try:
            _signing.verify(self._keys, headers, body, now=now)
        except _signing.WebhookVerificationError as err:
            log.warning("refused a push: %s", err)
            return Response.json(401, {"error": f"invalid signature: {err}"})
        try:
            push = json.loads(body)
        except ValueError as err:
            return Response.json(400, {"error": f"body is not JSON: {err}"})
        kind = cast("dict[str, Any]", push).get("type") if isinstance(push, dict) else None
        try:
            signed = headers.get(_signing.TIMESTAMP_HEADER, "")
            timing = PushTiming(
                received=received,
                signed_at=int(signed) if signed.isdigit() else None,
                platform_deadline=platform_deadline,
                serverless=serverless,
            )
            with _tracing.continued(headers, f"baton {kind}"):
                return await self._dispatch(kind, push, timing)
        except (KeyError, TypeError, ValueError) as err:
            # A push this SDK cannot read: the server records the answer as
            # a delivery failure and retries after back-off.
            log.exception("malformed %s push", kind)
            return Response.json(400, {"error": f"malformed {kind} push: {err!r}"})

    async def _dispatch(self, kind: Any, push: Any, timing: PushTiming) -> Response:
        if kind == "workflow_task":
            req = cast(WorkflowTaskRequest, push)
            defn = self._workflows.get(req["workflow_type"])
            answer = await run_workflow_task(defn, req, self._tasks, timing)
            return Response.json(200, answer)
        if kind in ("query", "update_validation"):
            # Both replay the history and run a read-only handler: the
            # query's, or the update's validator.
            sync = cast("dict[str, Any]", push)
            sdefn = self._workflows.get(str(sync["workflow_type"]))
            if not isinstance(sync.get("history"), list):
                raise KeyError("history")
            until = timing.received + SYNC_PUSH_BUDGET
            try:
                payloads = self._resolver.for_push(sync, timing, until=until)
                sync = await self._pager.whole(sync, timing, until=until)
                sync = await payloads.workflow_push(sync)
            except HistoryUnavailable as err:
                # Not the handler's answer: the caller gets 503, to retry.
                log.warning("%s of %s not answered: %s", kind, sync.get("workflow_id"), err)
                return Response.json(503, {"error": str(err)})
            handler = handle_query if kind == "query" else handle_update_validation
            answer = await self._replay(handler, sdefn, sync)
            return Response.json(200, answer)
        if kind == "activity_task":
            task = cast("dict[str, Any]", push)
            try:
                task = await self._resolver.activity_task(task, timing)
            except PayloadUnavailable as err:
                # Not delivered: the server pushes the attempt again (§7.2).
                log.warning("activity task of %s not run: %s", task.get("workflow_id"), err)
                return Response.json(503, {"error": str(err)})
            outcome = await run_activity(
                self._activities,
                cast(ActivityTaskRequest, task),
                server=self._server,
                executor=self._executor,
            )
            return Response.json(outcome.status, outcome.body)
        return Response.json(400, {"error": f"unknown push type {kind!r}"})

    async def _replay(
        self,
        handler: Callable[..., dict[str, Any]],
        definition: _WorkflowDefinition | None,
        push: Any,
    ) -> dict[str, Any]:
        """Runs ``handler`` (a query or update validation) in
        a copy of the context, so that nothing workflow code sets leaks
        into the request or the next replay: inline on this loop when the
        history is short, else on the replay pool."""
        call = functools.partial(
            contextvars.copy_context().run,
            handler,
            definition,
            push,
            determinism_checks=self._checks,
        )
        if len(push["history"]) <= self._inline_max:
            return call()
        return await asyncio.get_running_loop().run_in_executor(self._workflow_pool, call)

    # --- ASGI ----------------------------------------------------------------------

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self._tasks.cache.clear()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1")
            for k, v in cast("list[tuple[bytes, bytes]]", scope.get("headers") or [])
        }
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = cast(bytes, message.get("body", b""))
            size += len(chunk)
            if size > self._max_body:
                await _asgi_send(send, Response.json(413, {"error": "body too large"}))
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        response = await self.handle(scope.get("method", "GET"), headers, b"".join(chunks))
        await _asgi_send(send, response)

    # --- AWS Lambda ------------------------------------------------------------------

    def lambda_handler(self, event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
        """Handles a Lambda function URL or API Gateway (HTTP API v2 or REST
        v1) event. Bodies may be base64-encoded (``isBase64Encoded``); the
        signature is checked on the decoded bytes. With the Lambda
        ``context``, inline activities stop before the invocation's
        remaining time runs out."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        platform_deadline = (
            time.monotonic() + float(cast(int, remaining())) / 1000.0
            if callable(remaining)
            else None
        )
        if "requestContext" in event and "http" in (event.get("requestContext") or {}):
            method = str(event["requestContext"]["http"].get("method", "GET"))
        else:
            method = str(event.get("httpMethod") or "GET")
        raw_headers = cast("Mapping[str, Any]", event.get("headers") or {})
        headers = {str(k).lower(): str(v) for k, v in raw_headers.items()}
        raw_body = event.get("body") or ""
        if event.get("isBase64Encoded"):
            body = base64.b64decode(raw_body)
        else:
            body = raw_body.encode("utf-8") if isinstance(raw_body, str) else bytes(raw_body)
        loop: asyncio.AbstractEventLoop | None = getattr(self._lambda, "loop", None)
        if loop is None or loop.is_closed():
            # Kept across invocations: a warm Lambda reuses it.
            loop = asyncio.new_event_loop()
            self._lambda.loop = loop
        response = loop.run_until_complete(
            self._handle(
                method, headers, body, serverless=True, platform_deadline=platform_deadline
            )
        )
        return {
            "statusCode": response.status,
            "headers": response.headers,
            "body": response.body.decode("utf-8"),
            "isBase64Encoded": False,
        }


async def _asgi_send(send: ASGISend, response: Response) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in {**response.headers, "content-length": str(len(response.body))}.items()
            ],
        }
    )
    await send({"type": "http.response.body", "body": response.body})
