#!/usr/bin/env python3
"""Runs the fenced code blocks of README.md, sdk-py/README.md and
sdk-ts/README.md, so the docs cannot drift from the code (scripts/test.sh
calls it; it exits non-zero when a block breaks).

A block runs unless its info string says ``no-run`` (```sh no-run) or its
language is one that only illustrates (``json``, ``dockerfile``). Each
README is one session, its blocks run in order:

- README.md, ``sh``: each block runs with ``bash -euo pipefail`` against a
  real ``baton dev --db :memory:`` (``BATON_ADDRESS`` set, ``baton`` on
  PATH). The walkthrough's handler URL ``http://127.0.0.1:8000/`` is served
  by this script: an sdk-py App serving ``Greet`` (query ``status``) and
  ``Cart`` (update ``add_item``), started with the secret that
  ``baton endpoint register`` printed.
- sdk-py/README.md, ``python``: a block whose first line is ``# name.py`` is
  written to that file (and imported); the others run in one shared
  namespace seeded with ``app.py``'s globals, with top-level ``await``, and
  their ``async def test_*`` functions are called. The server is a real
  ``baton dev --time-skipping`` that this script serves ``app.app`` to for
  the ``onboarding`` queue (as the README's no-run setup block says) and
  whose clock it skips to the next timer while a block waits. In the text,
  ``http://127.0.0.1:7233`` becomes that server's address and
  ``"whsec_..."`` a real secret.
- sdk-ts/README.md, ``ts``: every block is compiled (``tsc --noEmit``,
  strict) against the built SDK (``sdk-ts/dist``); a block made of
  ``// name.ts`` sections is split into those files, so later blocks can
  import ``./workflows``. Then the quickstart runs: its ``server.ts``
  serves the handler (``BATON_SIGNING_SECRET`` set, port 8080 replaced by
  a free one) to a real ``baton dev --time-skipping`` for the
  ``greetings`` queue, every block that imports ``@baton/sdk/client``
  runs with Node against it while this script skips the server's clock to
  the next timer, and each workflow it started must have completed. In
  the text, ``http://127.0.0.1:7233`` becomes that server's address.

Needs ``BATON_BINARY`` (scripts/test.sh exports it), the sdk-py venv's
Python running this script, and ``npm run build`` done in sdk-ts.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import types
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
NOT_RUN_LANGUAGES = {"json", "dockerfile"}
FENCE = re.compile(
    r"^(?P<indent> *)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M
)


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    flags: set[str]
    body: str

    @property
    def runs(self) -> bool:
        return "no-run" not in self.flags and self.lang not in NOT_RUN_LANGUAGES

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} ({self.lang or 'no language'})"


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    out = []
    for m in FENCE.finditer(text):
        info = m.group("info").split()
        lang = info[0] if info else ""
        body = textwrap.dedent(m.group("body"))
        out.append(Block(path, text.count("\n", 0, m.start()) + 1, lang, set(info[1:]), body))
    return out


class Failed(Exception):
    pass


# ---- the top README: shell against baton dev --------------------------------


def _handler_app(secret: str) -> Any:
    from baton import App, workflow

    @workflow.defn(name="Greet")
    class Greet:
        def __init__(self) -> None:
            self.state = "greeting"

        @workflow.run
        async def run(self, who: dict[str, str]) -> str:
            self.state = "done"
            return f"Hello, {who['name']}!"

        @workflow.query
        def status(self) -> str:
            return self.state

    @workflow.defn(name="Cart")
    class Cart:
        def __init__(self) -> None:
            self.items: list[dict[str, Any]] = []

        @workflow.update
        def add_item(self, item: dict[str, Any]) -> int:
            self.items.append(item)
            return len(self.items)

        @workflow.run
        async def run(self) -> None:
            await workflow.wait_condition(lambda: False)

    return App(workflows=[Greet, Cart], signing_secret=secret)


@contextlib.contextmanager
def baton_dev(*extra: str) -> Iterator[str]:
    from baton.testing import _free_port

    binary = os.environ["BATON_BINARY"]
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "dev", "--db", ":memory:", "--listen", f"127.0.0.1:{port}", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{address}/readyz", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    raise Failed("baton dev exited") from None
                time.sleep(0.05)
        yield address
    finally:
        proc.terminate()
        proc.wait(10)


def run_shell_session(bs: list[Block]) -> None:
    from baton.testing import AppServer, _free_port

    handler_port = _free_port()
    server: AppServer | None = None
    with baton_dev() as address:
        env = dict(os.environ)
        env["BATON_ADDRESS"] = address
        env["PATH"] = f"{Path(os.environ['BATON_BINARY']).parent}{os.pathsep}{env['PATH']}"
        try:
            for b in bs:
                script = b.body.replace(
                    "http://127.0.0.1:8000/", f"http://127.0.0.1:{handler_port}/"
                )
                r = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", script],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                if r.returncode != 0:
                    raise Failed(f"{b.where()}: exit {r.returncode}\n{r.stdout}\n{r.stderr}")
                secret = re.search(r"whsec_[A-Za-z0-9+/=]+", r.stdout)
                if server is None and secret:
                    server = AppServer(_handler_app(secret.group(0)), port=handler_port).start()
                print(f"ok   {b.where()}")
        finally:
            if server is not None:
                server.stop()


# ---- sdk-py/README.md: Python with the real server --------------------------


def _substitute_py(body: str, address: str) -> str:
    return body.replace("http://127.0.0.1:7233", address).replace('"whsec_..."', repr(SECRET))


async def _skip_timers(address: str, stop: asyncio.Event) -> None:
    """Moves the time-skipping server to its next timer while a block waits
    (what Temporal's time-skipping test server does on its own)."""
    from baton import _http

    while not stop.is_set():
        with contextlib.suppress(Exception):
            await _http.request(
                "POST", f"{address}/api/v1/dev/time/skip", body={"to_next_timer": True}
            )
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)


async def _run_py_block(code: str, ns: dict[str, Any], where: str, address: str) -> None:
    tree = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    before = set(ns)
    stop = asyncio.Event()
    skipper = asyncio.create_task(_skip_timers(address, stop))
    try:
        result = eval(tree, ns)  # the README's own code
        if inspect.isawaitable(result):
            await asyncio.wait_for(result, 60)
        for name in sorted(set(ns) - before):
            if name.startswith("test_") and inspect.iscoroutinefunction(ns[name]):
                await asyncio.wait_for(ns[name](), 120)
    finally:
        stop.set()
        await skipper


def run_python_session(bs: list[Block]) -> None:
    from baton.testing import AppServer

    workdir = Path(tempfile.mkdtemp(prefix="readme-py-"))
    sys.path.insert(0, str(workdir))
    with baton_dev("--time-skipping") as address:
        # A real module, so that dataclasses and type hints find their globals.
        module_ns = types.ModuleType("__readme__")
        sys.modules["__readme__"] = module_ns
        ns: dict[str, Any] = vars(module_ns)
        server: AppServer | None = None

        async def session() -> None:
            nonlocal server
            for b in bs:
                code = _substitute_py(b.body, address)
                first = code.splitlines()[0].strip()
                m = re.fullmatch(r"# (\w+)\.py", first)
                try:
                    if m:
                        (workdir / f"{m.group(1)}.py").write_text(code)
                        module = __import__(m.group(1))
                        if m.group(1) == "app":
                            ns.update(
                                {k: v for k, v in vars(module).items() if not k.startswith("__")}
                            )
                            server = AppServer(module.app).start()
                            from baton import Client

                            client = await Client.connect(address)
                            await client._call(
                                "POST",
                                "/endpoints",
                                {
                                    "task_queue": "onboarding",
                                    "url": server.url,
                                    "secrets": [SECRET],
                                },
                            )
                    else:
                        await _run_py_block(code, ns, b.where(), address)
                except Exception as err:
                    raise Failed(f"{b.where()}:\n{traceback.format_exc()}") from err
                print(f"ok   {b.where()}")

        try:
            asyncio.run(session())
        finally:
            if server is not None:
                server.stop()
            sys.path.remove(str(workdir))
            shutil.rmtree(workdir, ignore_errors=True)


# ---- sdk-ts/README.md: TypeScript compiled against the built SDK -----------


def run_ts_session(bs: list[Block]) -> None:
    sdk = ROOT / "sdk-ts"
    dist = sdk / "dist" / "src"
    if not (dist / "index.d.ts").exists():
        raise Failed("sdk-ts is not built (npm run build)")
    workdir = Path(tempfile.mkdtemp(prefix="readme-ts-"))
    try:
        files: list[tuple[Block, str]] = []
        for i, b in enumerate(bs):
            parts = re.split(r"^// (\S+\.ts)\b.*$\n", b.body, flags=re.M)
            if len(parts) > 1 and not parts[0].strip():
                for name, text in zip(parts[1::2], parts[2::2], strict=True):
                    target = workdir / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_text(text)
                    files.append((b, name))
            else:
                name = f"block{i + 1}.ts"
                (workdir / name).write_text(b.body)
                files.append((b, name))
        paths = {
            "@baton/sdk": [str(dist / "index.d.ts")],
            "@baton/sdk/*": [str(dist / "*")],
            "@/*": ["./*"],
        }
        config = {
            "compilerOptions": {
                "strict": True,
                "noEmit": True,
                "target": "ES2022",
                "module": "ESNext",
                "moduleResolution": "Bundler",
                "lib": ["ES2022", "DOM"],
                "types": ["node"],
                "typeRoots": [str(sdk / "node_modules" / "@types")],
                "baseUrl": ".",
                "paths": paths,
                "skipLibCheck": True,
            },
            "include": ["**/*.ts"],
        }
        (workdir / "tsconfig.json").write_text(json.dumps(config))
        tsc = sdk / "node_modules" / "typescript" / "bin" / "tsc"
        r = subprocess.run(
            ["node", str(tsc), "-p", str(workdir)], capture_output=True, text=True, timeout=300
        )
        if r.returncode != 0:
            by_file = "\n".join(
                f"  {name} is from {b.where()}" for b, name in files if name in r.stdout
            )
            raise Failed(f"tsc failed on sdk-ts/README.md blocks:\n{r.stdout}{r.stderr}{by_file}")
        for where in dict.fromkeys(b.where() for b, _ in files):
            print(f"ok   {where} (compiled)")
        _run_ts_quickstart(workdir, files, config)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# Node resolves the README's extensionless relative imports (`./workflows`,
# as bundlers and tsc's "Bundler" resolution do) through this hook.
_TS_RESOLVE_HOOK = """
export async function resolve(specifier, context, next) {
  if (/^\\.\\.?\\//.test(specifier) && !/\\.[cm]?js$/.test(specifier)) {
    return next(specifier + ".js", context);
  }
  return next(specifier, context);
}
"""


def _http_json(method: str, url: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"null")


def _run_ts_quickstart(
    workdir: Path, files: list[tuple[Block, str]], config: dict[str, Any]
) -> None:
    """Runs the quickstart's handler and the client blocks for real."""
    import threading

    from baton.testing import _free_port

    sdk = ROOT / "sdk-ts"
    clients = [
        (b, name)
        for b, name in files
        if re.search(r"from ['\"]@baton/sdk/client['\"]", (workdir / name).read_text())
    ]
    if not any(name == "server.ts" for _, name in files) or not clients:
        raise Failed("sdk-ts/README.md: no quickstart server.ts or no client block to run")
    port = _free_port()
    with baton_dev("--time-skipping") as address:
        for _, name in [*clients, (None, "server.ts")]:
            text = (workdir / name).read_text().replace("http://127.0.0.1:7233", address)
            if name == "server.ts":
                if ".listen(8080)" not in text:
                    raise Failed("sdk-ts/README.md: server.ts no longer listens on 8080")
                text = text.replace(".listen(8080)", f".listen({port})")
            (workdir / name).write_text(text)
        emit = dict(config["compilerOptions"], noEmit=False, outDir="out")
        (workdir / "tsconfig.json").write_text(json.dumps({**config, "compilerOptions": emit}))
        tsc = sdk / "node_modules" / "typescript" / "bin" / "tsc"
        r = subprocess.run(
            ["node", str(tsc), "-p", str(workdir)], capture_output=True, text=True, timeout=300
        )
        if r.returncode != 0:
            raise Failed(f"tsc (emit) failed on sdk-ts/README.md blocks:\n{r.stdout}{r.stderr}")
        out = workdir / "out"
        (out / "package.json").write_text('{"type": "module"}')
        (out / "node_modules" / "@baton").mkdir(parents=True)
        (out / "node_modules" / "@baton" / "sdk").symlink_to(sdk, target_is_directory=True)
        (out / "hooks.mjs").write_text(_TS_RESOLVE_HOOK)
        (out / "register.mjs").write_text(
            'import { register } from "node:module";\nregister("./hooks.mjs", import.meta.url);\n'
        )
        node = ["node", "--import", "./register.mjs"]
        _http_json(
            "POST",
            f"{address}/api/v1/namespaces/default/endpoints",
            {"task_queue": "greetings", "url": f"http://127.0.0.1:{port}/", "secrets": [SECRET]},
        )
        env = dict(os.environ, BATON_SIGNING_SECRET=SECRET)
        server = subprocess.Popen(
            [*node, "server.js"], cwd=out, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        stop = threading.Event()

        def skip_timers() -> None:
            while not stop.wait(0.2):
                with contextlib.suppress(OSError):
                    _http_json("POST", f"{address}/api/v1/dev/time/skip", {"to_next_timer": True})

        skipper = threading.Thread(target=skip_timers, daemon=True)
        try:
            for _ in range(200):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
                    break
                except OSError:
                    if server.poll() is not None:
                        break
                    time.sleep(0.05)
            if server.poll() is not None:
                log = server.stdout.read().decode() if server.stdout else ""
                raise Failed(f"sdk-ts/README.md server.ts exited {server.returncode}:\n{log}")
            skipper.start()
            for b, name in clients:
                try:
                    r = subprocess.run(
                        [*node, name.removesuffix(".ts") + ".js"],
                        cwd=out,
                        capture_output=True,
                        text=True,
                        timeout=120,
                    )
                except subprocess.TimeoutExpired as err:
                    raise Failed(f"{b.where()}: still running after 120 s") from err
                if r.returncode != 0:
                    raise Failed(f"{b.where()}: node exit {r.returncode}\n{r.stdout}{r.stderr}")
                scheduled = re.findall(r"scheduleId: '([^']+)'", b.body)
                if scheduled:
                    # A schedule block: its calls raise on any error answer;
                    # check that its schedule started runs (`<id>-<time>`).
                    for schedule_id in scheduled:
                        query = urllib.parse.quote(f'WorkflowId STARTS_WITH "{schedule_id}-"')
                        url = f"{address}/api/v1/namespaces/default/workflows?query={query}"
                        if not _http_json("GET", url).get("executions"):
                            raise Failed(f"{b.where()}: schedule {schedule_id} started no run")
                    print(f"ok   {b.where()} (ran against baton dev)")
                    continue
                started = re.findall(r"workflowId: '([^']+)'", b.body)
                if not started:
                    raise Failed(f"{b.where()}: starts no workflow this script can check")
                for workflow_id in started:
                    url = f"{address}/api/v1/namespaces/default/workflows/{workflow_id}/result"
                    try:
                        res = _http_json("GET", url)
                    except OSError as err:
                        raise Failed(f"{b.where()}: workflow {workflow_id}: {err}") from err
                    if res.get("status") != "COMPLETED":
                        raise Failed(f"{b.where()}: workflow {workflow_id} ended {res}")
                print(f"ok   {b.where()} (ran against baton dev)")
        finally:
            stop.set()
            if skipper.is_alive():
                skipper.join(5)
            server.terminate()
            server.wait(10)


SESSIONS = {
    "README.md": ("sh", run_shell_session),
    "sdk-py/README.md": ("python", run_python_session),
    "sdk-ts/README.md": ("ts", run_ts_session),
}


def main(argv: list[str]) -> int:
    only = set(argv)
    failed = 0
    for rel, (lang, run) in SESSIONS.items():
        if only and rel not in only:
            continue
        all_blocks = blocks(ROOT / rel)
        runnable = [b for b in all_blocks if b.runs]
        stray = [b for b in runnable if b.lang != lang]
        for b in all_blocks:
            if not b.runs:
                print(f"skip {b.where()} ({'no-run' if 'no-run' in b.flags else b.lang})")
        if stray:
            for b in stray:
                print(
                    f"FAIL {b.where()}: a {b.lang or 'plain'} block in {rel} neither runs nor says no-run"
                )
            failed += 1
            continue
        try:
            run(runnable)
        except Failed as err:
            print(f"FAIL {err}")
            failed += 1
    print("README blocks: " + ("all ran" if not failed else f"{failed} session(s) failed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
