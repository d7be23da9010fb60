"""W1/W2/W3 with the workflow and activities written in Python and served
by the SDK under uvicorn (one process), against ``baton serve`` on a fresh
PostgreSQL database. Prints one JSON line per workload.

    python bench/bench.py [--workloads W1,W2,W3] [--scale 1.0] [--in-flight N]
        [--tls] [--pin] [--database-url postgres://postgres@127.0.0.1:5432/postgres]

``--in-flight`` replaces every workload's concurrency (e.g. 1, to tell a
push's own time from its queueing behind the others). ``--tls`` serves the
server's API over https, with a CA made here by the ``openssl`` command:
the inline sessions' checkpoints go over TLS, verified against the
system's CAs plus that one (``SSL_CERT_FILE`` in the handler). ``--pin``
runs the handler on CPU 0 and the server on CPU 1: on a small machine the
kernel otherwise tends to stack the server's threads, woken by the
handler's writes on loopback, on the handler's core.

The load driver (this process) uses the SDK's client: start_workflow, then
a result long-poll per workflow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from baton import Client, _http  # noqa: E402
from baton.testing import _free_port, find_baton_binary  # noqa: E402

SECRET = "whsec_YmF0b24tYmVuY2htYXJrLXNlY3JldC1rZXktMzI="
WORKLOADS = {  # name: (workflows, in flight, baseline seconds)
    "W1": (2000, 50, 0.0),
    "W2": (200, 1, 0.0),
    "W3": (500, 100, 1.0),
}


def cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def run_queue_wait_of(pid: int) -> float:
    """Seconds the process's threads spent runnable but not running (waiting
    for a core), from ``/proc/<pid>/task/*/schedstat``."""
    total = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            total += int(stat.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


async def histogram_sums(
    target: str, tls: ssl.SSLContext | None, metric: str, label: str
) -> dict[str, list[float]]:
    """The server's histogram ``metric`` by ``label``: [sum, count]."""
    text = (await _http.request("GET", target + "/metrics", ssl_context=tls)).body.decode()
    out: dict[str, list[float]] = {}
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if name not in (f"{metric}_sum", f"{metric}_count"):
            continue
        labels, _, value = rest.rpartition("} ")
        key = next(
            (
                kv.split("=", 1)[1].strip('"')
                for kv in labels.split(",")
                if kv.startswith(label + "=")
            ),
            "?",
        )
        slot = out.setdefault(key, [0.0, 0.0])
        slot[0 if name.endswith("_sum") else 1] += float(value)
    return out


async def server_times(target: str, tls: ssl.SSLContext | None) -> dict[str, list[float]]:
    """[sum, count] of the server's ``baton_push_duration_seconds`` (push
    sent to answer received, as the server sees it) by kind, and of its
    handling of checkpoints (``baton_api_request_duration_seconds`` of the
    checkpoint route) under ``checkpoint``."""
    out = await histogram_sums(target, tls, "baton_push_duration_seconds", "kind")
    routes = await histogram_sums(target, tls, "baton_api_request_duration_seconds", "route")
    for route, slot in routes.items():
        if route.endswith("/workflow-tasks/checkpoint"):
            out["checkpoint"] = slot
    return out


def make_pki(d: Path) -> None:
    """A CA, and a certificate for 127.0.0.1 it signed (``openssl``)."""

    def openssl(*a: str) -> None:
        subprocess.run(["openssl", *a], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=bench CA",
    )
    openssl("req", *ec, "-keyout", "key.pem", "-out", "cert.csr", "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    sign = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1"]
    openssl("x509", "-req", "-in", "cert.csr", *sign, "-out", "cert.pem", "-extfile", "ext.cnf")
    system = ssl.get_default_verify_paths()
    bundle = Path(system.cafile or system.openssl_cafile)
    (d / "bundle.pem").write_bytes(
        (bundle.read_bytes() if bundle.is_file() else b"") + (d / "ca.pem").read_bytes()
    )


async def wait_http(url: str, tls: ssl.SSLContext | None = None) -> None:
    for _ in range(300):
        try:
            await _http.request("GET", url, timeout=1, ssl_context=tls)
            return
        except Exception:
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


async def run_workload(
    client: Client, name: str, count: int, in_flight: int, baseline: float, pids: dict[str, int]
) -> dict[str, object]:
    sem = asyncio.Semaphore(in_flight)
    latencies: list[float] = []
    run = uuid.uuid4().hex[:8]

    async def one(i: int) -> None:
        async with sem:
            t = time.perf_counter()
            h = await client.start_workflow(name, id=f"{name}-{run}-{i}", task_queue="bench")
            await h.result()
            latencies.append(time.perf_counter() - t - baseline)

    cpu0 = {k: cpu_of(p) for k, p in pids.items()}
    wait0 = run_queue_wait_of(pids["handler"])
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - t0
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = {
        f"cpu_ms_per_wf_{k}": round((cpu_of(p) - cpu0[k]) * 1000 / count, 2)
        for k, p in pids.items()
    }
    cpu["run_queue_wait_ms_per_wf_handler"] = round(
        (run_queue_wait_of(pids["handler"]) - wait0) * 1000 / count, 2
    )
    cpu["cpu_ms_per_wf_driver"] = round(
        ((self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime)) * 1000 / count, 2
    )
    latencies.sort()
    q = lambda p: round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1)  # noqa: E731
    return {
        "workload": name,
        "workflows": count,
        "in_flight": in_flight,
        "seconds": round(elapsed, 2),
        "workflows_per_s": round(count / elapsed, 1),
        "latency_ms": {
            "p50": q(0.5),
            "p90": q(0.9),
            "p99": q(0.99),
            "mean": round(statistics.mean(latencies) * 1000, 1),
        },
        **cpu,
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workloads", default="W1,W2,W3")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--in-flight", type=int, help="every workload's concurrency")
    ap.add_argument("--tls", action="store_true", help="the server's API over https")
    ap.add_argument("--pin", action="store_true", help="handler on CPU 0, server on CPU 1")
    ap.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    ap.add_argument(
        "--sqlite", action="store_true", help="use baton dev (SQLite) instead of PostgreSQL"
    )
    args = ap.parse_args()

    binary = find_baton_binary()
    port, app_port = _free_port(), _free_port()
    procs: list[subprocess.Popen[bytes]] = []
    db_name = None
    if args.sqlite:
        server_cmd = [binary, "dev", "--db", ":memory:", "--listen", f"127.0.0.1:{port}"]
    else:
        db_name = f"baton_pybench_{uuid.uuid4().hex[:8]}"
        subprocess.run(["psql", args.database_url, "-qc", f"create database {db_name}"], check=True)
        url = args.database_url.rsplit("/", 1)[0] + "/" + db_name
        server_cmd = [binary, "serve", "--database-url", url, "--listen", f"127.0.0.1:{port}"]
    env = dict(os.environ, RUST_LOG="warn")
    handler_env = dict(env, PYTHONPATH=str(HERE.parent / "src"))
    tls: ssl.SSLContext | None = None
    pki = Path(tempfile.mkdtemp(prefix="baton-pybench-"))
    if args.tls:
        make_pki(pki)
        server_cmd += ["--tls-cert", str(pki / "cert.pem"), "--tls-key", str(pki / "key.pem")]
        handler_env["SSL_CERT_FILE"] = str(pki / "bundle.pem")
        tls = ssl.create_default_context(cafile=str(pki / "ca.pem"))

    def on_cpu(cpu: int) -> Callable[[], None] | None:
        return (lambda: os.sched_setaffinity(0, {cpu})) if args.pin else None

    try:
        procs.append(
            subprocess.Popen(
                server_cmd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=on_cpu(1),
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bench_app:app",
                    "--port",
                    str(app_port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                cwd=HERE,
                env=handler_env,
                preexec_fn=on_cpu(0),
            )
        )
        target = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        app_url = f"http://127.0.0.1:{app_port}/"
        await wait_http(target + "/healthz", tls)
        await wait_http(app_url)
        client = await Client.connect(target, tls=tls)
        await client._call(
            "POST", "/endpoints", {"task_queue": "bench", "url": app_url, "secrets": [SECRET]}
        )
        pids = {"server": procs[0].pid, "handler": procs[1].pid}
        for name in args.workloads.split(","):
            count, in_flight, baseline = WORKLOADS[name]
            count = max(1, int(count * args.scale))
            in_flight = args.in_flight or in_flight
            before = (await _http.request("GET", app_url + "stats")).json_object()
            seen_before = await server_times(target, tls)
            result = await run_workload(client, name, count, in_flight, baseline, pids)
            after = (await _http.request("GET", app_url + "stats")).json_object()
            seen_after = await server_times(target, tls)
            seen = {
                kind: round((s - seen_before.get(kind, [0, 0])[0]) * 1000 / dn, 2)
                for kind, (s, n) in seen_after.items()
                if (dn := n - seen_before.get(kind, [0, 0])[1])
            }
            # What the pushes cost as the server sees them: the app's wall
            # time plus any wait before the app reads the request (a busy
            # loop leaves it in the socket) and the round trip.
            server_checkpoint_ms = seen.pop("checkpoint", None)
            result["server_seen_push_ms"] = seen
            walls = sorted(after.pop("walls")[len(before.pop("walls")) :])
            d = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            if d.get("requests"):
                pushes = d["requests"]
                result["pushes_per_wf"] = round(pushes / count, 2)
                # The push's wall time inside the app (request received to
                # response sent) and the handler process's CPU per push.
                result["push_wall_ms"] = {
                    "p50": round(walls[len(walls) // 2] * 1000, 2),
                    "p99": round(walls[min(len(walls) - 1, int(0.99 * len(walls)))] * 1000, 2),
                    "mean": round(d["handle_s"] * 1000 / pushes, 2),
                }
                result["handler_cpu_ms_per_push"] = round(d["cpu_s"] * 1000 / pushes, 3)
                # Where the push's wall time went inside the app: body,
                # signature and JSON before the dispatch, the dispatch
                # (replay, inline session), the answer sent after it.
                result["push_phase_ms"] = {
                    phase: round(d.get(f"{phase}_s", 0) * 1000 / pushes, 2)
                    for phase in ("before_dispatch", "dispatch", "after_dispatch")
                }
                if d.get("checkpoints"):
                    # The inline sessions' checkpoints: round trip as the app
                    # sees it (request written to answer read, including the
                    # loop's turns), and the server's handling of them.
                    result["checkpoints_per_push"] = round(d["checkpoints"] / pushes, 2)
                    result["checkpoint_ms"] = {
                        "app": round(d["checkpoint_s"] * 1000 / d["checkpoints"], 2),
                        "server": server_checkpoint_ms,
                    }
                for kind in ("workflow_task", "activity_task"):
                    if d.get(f"pushes_{kind}"):
                        result[f"dispatch_ms_per_{kind}"] = round(
                            d[f"dispatch_s_{kind}"] * 1000 / d[f"pushes_{kind}"], 3
                        )
                if d.get("loop_lag_samples"):
                    result["loop_lag_ms"] = {
                        "mean": round(d["loop_lag_s"] * 1000 / d["loop_lag_samples"], 2),
                        "max_so_far": round(after["loop_lag_max_s"] * 1000, 1),
                    }
                wt = d.get("workflow_tasks") or 1
                result["replay_ms_per_workflow_task"] = round(d.get("replay_s", 0) * 1000 / wt, 3)
                result["json_decode_ms_per_push"] = round(
                    d.get("json_decode_s", 0) * 1000 / d["requests"], 3
                )
                result["events_per_workflow_task"] = round(d.get("history_events", 0) / wt, 1)
            print(json.dumps(result), flush=True)
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(pki, ignore_errors=True)
        if db_name:
            subprocess.run(
                ["psql", args.database_url, "-qc", f"drop database if exists {db_name}"],
                check=False,
            )


if __name__ == "__main__":
    asyncio.run(main())
