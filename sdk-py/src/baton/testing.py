"""Testing helpers: replay recorded histories against current workflow code,
and run a throwaway local ``baton dev`` server.

    replayer = Replayer(workflows=[Onboarding])
    await replayer.replay_workflow(WorkflowHistory.from_json("id", json_text))

    async with await WorkflowEnvironment.start_local() as env:
        await env.register_endpoint("onboarding", "http://127.0.0.1:8000/", SECRET)
        result = await env.client.execute_workflow(...)
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from baton import _http
from baton._payloads import read_digests
from baton._protocol import EventDict, WorkflowTaskRequest, format_duration, parse_duration
from baton._workflow_instance import WorkflowInstance, WorkflowTaskFailure
from baton.client import Client, WorkflowHistory
from baton.exceptions import BatonError, NonDeterminismError, NotSupportedError
from baton.workflow import _definitions

__all__ = [
    "AppServer",
    "Replayer",
    "WorkflowEnvironment",
    "WorkflowReplayResult",
    "find_baton_binary",
]


@dataclass
class WorkflowReplayResult:
    history: WorkflowHistory
    replay_failure: Exception | None


class Replayer:
    """Replays exported histories against workflow code and reports
    non-determinism (code changed in a way old runs cannot survive)."""

    def __init__(self, *, workflows: Sequence[type], determinism_checks: bool = True) -> None:
        self._defs = _definitions(workflows)
        self._checks = determinism_checks

    async def replay_workflow(
        self,
        history: WorkflowHistory | str | dict[str, Any] | list[Any],
        *,
        raise_on_replay_failure: bool = True,
    ) -> WorkflowReplayResult:
        """Replays one history: a :class:`WorkflowHistory`, the JSON text or
        object of ``fetch_history`` / ``GET …/history`` / ``baton workflow
        show --output json``, or a bare list of events."""
        h = (
            history
            if isinstance(history, WorkflowHistory)
            else WorkflowHistory.from_json("replay", history)
        )
        return await asyncio.to_thread(self._replay, h, raise_on_replay_failure)

    def replay_workflow_sync(
        self,
        history: WorkflowHistory | str | dict[str, Any] | list[Any],
        *,
        raise_on_replay_failure: bool = True,
    ) -> WorkflowReplayResult:
        h = (
            history
            if isinstance(history, WorkflowHistory)
            else WorkflowHistory.from_json("replay", history)
        )
        return self._replay(h, raise_on_replay_failure)

    def _replay(self, h: WorkflowHistory, raise_on_failure: bool) -> WorkflowReplayResult:
        if not h.events or h.events[0]["event_type"] != "WorkflowExecutionStarted":
            raise ValueError("a history must begin with WorkflowExecutionStarted")
        if read_digests(h.events):
            raise ValueError(
                "the history holds payload references (docs/protocol.md §9.1): fetch it with "
                "WorkflowHandle.fetch_history, which puts the payloads in place"
            )
        started = h.events[0]["attributes"]
        wf_type = str(started.get("workflow_type", ""))
        defn = self._defs.get(wf_type)
        if defn is None:
            raise ValueError(f"workflow type {wf_type!r} is not among the replayer's workflows")
        request = cast(
            WorkflowTaskRequest,
            {
                "type": "workflow_task",
                "namespace": "default",
                "task_token": "",
                "workflow_id": h.workflow_id,
                "run_id": h.run_id or "00000000-0000-0000-0000-000000000000",
                "workflow_type": wf_type,
                "task_queue": str(started.get("task_queue", "")),
                "attempt": 1,
                "history": _replayable(h.events),
                "history_length": len(h.events),
                "history_size_bytes": 0,
                "suggest_continue_as_new": False,
            },
        )
        failure: Exception | None = None
        try:
            WorkflowInstance(defn, request, determinism_checks=self._checks).activate()
        except NonDeterminismError as err:
            failure = err
        except WorkflowTaskFailure as err:
            cause = err.cause
            failure = cause if isinstance(cause, Exception) else BatonError(repr(cause))
        if failure is not None and raise_on_failure:
            raise failure
        return WorkflowReplayResult(h, failure)


def _replayable(events: list[EventDict]) -> list[EventDict]:
    """An exported history of a closed run ends after its last task; one of
    an open run may end with a task that was scheduled but not answered.
    Either way there is no final WorkflowTaskStarted to answer, so the
    replay stops after matching every recorded command."""
    return list(events)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_baton_binary() -> str:
    """``BATON_BINARY``, else ``target/{debug,release}/baton`` of the
    repository this package sits in (or ``CARGO_TARGET_DIR``), else
    ``baton`` on PATH (the newest of the candidates found)."""
    env = os.environ.get("BATON_BINARY")
    if env:
        return env
    candidates: list[Path] = []
    target_dirs: list[Path] = []
    if os.environ.get("CARGO_TARGET_DIR"):
        target_dirs.append(Path(os.environ["CARGO_TARGET_DIR"]))
    for parent in Path(__file__).resolve().parents:
        if (parent / "Cargo.toml").exists():
            target_dirs.append(parent / "target")
            break
    cwd = Path.cwd()
    for parent in [cwd, *cwd.parents]:
        if (parent / "Cargo.toml").exists():
            target_dirs.append(parent / "target")
            break
    for t in target_dirs:
        for profile in ("debug", "release"):
            p = t / profile / "baton"
            if p.is_file() and os.access(p, os.X_OK):
                candidates.append(p)
    if candidates:
        return str(max(candidates, key=lambda p: p.stat().st_mtime))
    on_path = shutil.which("baton")
    if on_path:
        return on_path
    raise FileNotFoundError(
        "no baton binary: set BATON_BINARY, run `cargo build --bin baton`, or put baton on PATH"
    )


class WorkflowEnvironment:
    """A local ``baton dev`` server on a free loopback port, with a client."""

    def __init__(
        self,
        process: subprocess.Popen[bytes] | None,
        client: Client,
        *,
        time_skipping: bool = False,
    ) -> None:
        self._process = process
        self.client = client
        self._time_skipping = time_skipping
        self._skipped = 0.0

    @property
    def target(self) -> str:
        return self.client.target

    @staticmethod
    async def start_local(
        *,
        namespace: str = "default",
        binary: str | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 30.0,
        time_skipping: bool = False,
    ) -> WorkflowEnvironment:
        """Starts ``baton dev --db :memory: --listen 127.0.0.1:<port>``
        (plus ``--time-skipping`` when asked)."""
        exe = binary or find_baton_binary()
        port = _free_port()
        args = [exe, "dev", "--db", ":memory:", "--listen", f"127.0.0.1:{port}", *extra_args]
        if time_skipping and "--time-skipping" not in args:
            args.append("--time-skipping")
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        target = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + startup_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise BatonError(f"baton dev exited with {process.returncode}: {err[-2000:]}")
            try:
                client = await Client.connect(target, namespace=namespace)
                _drain(process)
                return WorkflowEnvironment(process, client, time_skipping="--time-skipping" in args)
            except Exception as e:
                last = e
                await asyncio.sleep(0.05)
        process.kill()
        raise BatonError(f"baton dev did not answer on {target} within {startup_timeout}s: {last}")

    @staticmethod
    async def from_client(client: Client) -> WorkflowEnvironment:
        """An environment around an existing server (nothing to stop)."""
        return WorkflowEnvironment(None, client)

    @staticmethod
    async def start_time_skipping(**kwargs: Any) -> WorkflowEnvironment:
        """:meth:`start_local` with ``baton dev --time-skipping``: timers and
        timeouts fire when the test skips time (:meth:`sleep`,
        :meth:`skip_time`, :meth:`skip_to_next_timer`)."""
        return await WorkflowEnvironment.start_local(time_skipping=True, **kwargs)

    @property
    def supports_time_skipping(self) -> bool:
        return self._time_skipping

    async def sleep(self, duration: timedelta | float) -> None:
        """Moves the server's clock forward by ``duration`` when it skips
        time; waits for real otherwise."""
        seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
        if self._time_skipping:
            await self.skip_time(timedelta(seconds=seconds))
        else:
            await asyncio.sleep(seconds)

    async def skip_time(self, duration: timedelta) -> None:
        """Moves the server's clock forward; every timer and timeout due by
        then fires at once (``POST /api/v1/dev/time/skip``)."""
        # Move our clock first: the server pushes the work that came due as
        # soon as it skips, possibly before its answer reaches us.
        self._skipped += duration.total_seconds()
        await self._skip({"duration": format_duration(duration)})

    async def skip_to_next_timer(self) -> None:
        """Moves the server's clock to its earliest pending timer or timeout."""
        await self._skip({"to_next_timer": True})

    async def _skip(self, body: dict[str, Any]) -> None:
        if not self._time_skipping:
            raise NotSupportedError("this environment was not started with time skipping")
        resp = await self.client._call("POST", "/api/v1/dev/time/skip", body, ns=False)
        self._skipped = parse_duration(str(resp.json_object()["skipped"])).total_seconds()

    async def register_endpoint(
        self,
        task_queue: str,
        url: str,
        secrets: str | Sequence[str],
        *,
        version: str | None = None,
        max_concurrency: int | None = None,
        schemas: bool = True,
    ) -> dict[str, Any]:
        """Registers ``url`` for ``task_queue``, with the protocol features
        its description lists and the input schemas it publishes (as
        ``baton endpoint register`` does), the schemas unless ``schemas`` is
        false."""
        body: dict[str, Any] = {
            "task_queue": task_queue,
            "url": url,
            "secrets": [secrets] if isinstance(secrets, str) else list(secrets),
        }
        described = await _http.request("GET", url, timeout=5)
        description = described.json_object() if described.status == 200 else {}
        if description.get("features"):
            body["features"] = description["features"]
        if schemas:
            body["schemas"] = description.get("schemas")
        if version:
            body["version"] = version
        if max_concurrency:
            body["max_concurrency"] = max_concurrency
        resp = await self.client._call("POST", "/endpoints", body)
        return cast("dict[str, Any]", resp.json())

    async def shutdown(self) -> None:
        p = self._process
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            await asyncio.to_thread(p.wait, 10)
        except subprocess.TimeoutExpired:
            p.kill()
            await asyncio.to_thread(p.wait)

    async def __aenter__(self) -> WorkflowEnvironment:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()


def _drain(process: subprocess.Popen[bytes]) -> None:
    """Keeps reading the server's stderr so a chatty server never blocks."""
    stream = process.stderr
    if stream is None:
        return

    def pump() -> None:
        for _ in iter(stream.readline, b""):
            pass

    threading.Thread(target=pump, name="baton-dev-stderr", daemon=True).start()


class AppServer:
    """Serves a :class:`baton.App` with uvicorn on a free loopback port in a
    background thread (needs ``uvicorn``, part of the ``dev`` extra)."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        try:
            uvicorn: Any = importlib.import_module("uvicorn")
        except ImportError as err:  # pragma: no cover
            raise ImportError("AppServer needs uvicorn: pip install 'baton-sdk[dev]'") from err
        self.host = host
        self.port = port or _free_port()
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="baton-app", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> AppServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise BatonError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def history_from_file(path: str | Path, workflow_id: str = "replay") -> WorkflowHistory:
    """Loads a JSON history file (any shape :meth:`Replayer.replay_workflow` takes)."""
    return WorkflowHistory.from_json(workflow_id, json.loads(Path(path).read_text()))
