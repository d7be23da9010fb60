"""The child processes the SIGKILL tests start, kill and start again
(test_local_activities_kill.py, test_inline_activities_kill.py): a handler
script served by uvicorn on a fixed loopback port, whose activities append
``<pid> start|end <step>`` to the file ``STEPS_LOG`` names, and that log
read back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# How long a child process may take to listen.
START_WAIT = 60.0


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    """Returns once 127.0.0.1:``port`` accepts connections; fails if
    ``proc`` exits first or :data:`START_WAIT` passes."""
    deadline = time.monotonic() + START_WAIT
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminates ``proc`` if it runs, killing it after 10 s."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def sigkill(proc: subprocess.Popen[bytes] | None) -> None:
    assert proc is not None
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


class HandlerProcess:
    """``script`` (a handler module of tests/ run as ``script <port>``) in a
    process of its own, its stderr appended to ``stderr`` if given."""

    def __init__(self, script: Path, port: int, log: Path, stderr: Path | None = None) -> None:
        self.script = script
        self.port = port
        self.log = log
        self.stderr = stderr
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "STEPS_LOG": str(self.log)}
        root = Path(__file__).resolve().parents[1]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        args = [sys.executable, str(self.script), str(self.port)]
        if self.stderr is None:
            self.proc = subprocess.Popen(args, env=env)
        else:
            with open(self.stderr, "ab") as err:
                self.proc = subprocess.Popen(args, env=env, stderr=err)
        wait_listening(self.port, self.proc, "the handler")

    def kill(self) -> None:
        sigkill(self.proc)

    def stop(self) -> None:
        stop(self.proc)


def log_step(line: str) -> None:
    """Appends ``<pid> <line>`` to ``STEPS_LOG`` (called by the handlers'
    activities)."""
    with open(os.environ["STEPS_LOG"], "a") as f:
        f.write(f"{os.getpid()} {line}\n")


def step_lines(log: Path) -> list[tuple[int, str, int]]:
    """The (pid, ``start``/``end``, step) lines of a steps log."""
    if not log.exists():
        return []
    out: list[tuple[int, str, int]] = []
    for line in log.read_text().splitlines():
        pid, what, n = line.split()
        out.append((int(pid), what, int(n)))
    return out
