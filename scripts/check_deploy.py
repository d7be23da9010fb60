"""Checks every deployment file under deploy/ with the tool made for it, and
what no linter knows: that the manifests call the binary with flags it
has, that the dashboard's metrics exist on a live node, that the example
handlers answer real pushes through their Lambda adapters.

Run by scripts/check-deploy.sh (which installs the tools into a cached
venv and passes their locations through the environment):

  DEPLOY_VENV    the venv holding hadolint, kubernetes-validate,
                 check-jsonschema, cfn-lint, pytest and uvicorn
  BATON_BINARY   the `baton` binary the image would ship
  PROMTOOL       Prometheus' promtool (its `prometheus` beside it)

Prints one line per check; exits 1 after the first failing section.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
VENV = Path(os.environ["DEPLOY_VENV"])
BATON = os.environ["BATON_BINARY"]
PROMTOOL = os.environ["PROMTOOL"]

# The Kubernetes release the manifests are validated against.
KUBERNETES_VERSION = "1.30.0"
# Custom resources kubernetes-validate has no schema for, and the schema
# vendored for each (deploy/schemas/README.md says where it comes from).
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): DEPLOY / "schemas" / "servicemonitor_v1.json",
}
# Manifests outside kustomization.yaml, validated on their own.
STANDALONE = ["secrets.example.yaml", "prometheus-adapter-config.yaml"]
# A signing secret for the checks' own handler (not a deployment's).
CHECK_SECRET = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
# Dashboard metrics whose series only appear after events this check does
# not cause (retention deleting runs older than a namespace's retention,
# an activity attempt after a failure): they must at least be declared in
# src/telemetry/mod.rs.
NOT_LIVE = {"baton_retention_deleted_runs_total", "baton_activity_retries_total"}


class CheckFailed(Exception):
    pass


def say(what: str) -> None:
    print(f"  ok  {what}", flush=True)


def skip(what: str) -> None:
    print(f"  --  skipped: {what}", flush=True)


def fail(what: str) -> None:
    raise CheckFailed(what)


def tool(name: str) -> str:
    return str(VENV / "bin" / name)


def run(args: list[str], *, what: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> str:
    """Runs a checker; its output is shown when it fails."""
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        fail(f"{what}: {' '.join(args)} exited {p.returncode}\n{p.stdout}{p.stderr}")
    return p.stdout + p.stderr


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# --- flags the deployment files pass to the binary -------------------------------------


_help_cache: dict[tuple[str, ...], str] = {}


def help_text(subcommand: tuple[str, ...]) -> str:
    if subcommand not in _help_cache:
        _help_cache[subcommand] = run(
            [BATON, *subcommand, "--help"], what=f"baton {' '.join(subcommand)} --help"
        )
    return _help_cache[subcommand]


def check_invocation(argv: list[str], env: list[str], where: str) -> None:
    """`argv` (after the binary) names an existing subcommand, every
    `--flag` is one its --help lists, and every BATON_* variable is one it
    reads ([env: …])."""
    sub: list[str] = []
    for a in argv:
        if a.startswith("-"):
            break
        sub.append(a)
    if not sub:
        fail(f"{where}: no subcommand in {argv}")
    text = help_text(tuple(sub))
    flags = set(re.findall(r"(--[a-z0-9][a-z0-9-]*)", text))
    used = [a.split("=", 1)[0] for a in argv if a.startswith("--")]
    unknown = [f for f in used if f not in flags]
    if unknown:
        fail(
            f"{where}: `baton {' '.join(sub)}` has no {', '.join(unknown)} (baton {' '.join(sub)} --help)"
        )
    envs = set(re.findall(r"\[env: (BATON_[A-Z_]+)", text))
    # A variable spliced into the arguments (Kubernetes' `$(NAME)`) is for
    # the container spec, not for the binary.
    spliced = {e for e in env if any(f"$({e})" in a for a in argv)}
    missing = [e for e in env if e.startswith("BATON_") and e not in envs and e not in spliced]
    if missing:
        fail(f"{where}: `baton {' '.join(sub)}` reads no {', '.join(missing)}")
    say(" ".join([f"{where}: baton", *sub, *used, *env]))


def baton_containers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    for c in pod.get("containers", []):
        if c.get("image", "").split(":")[0].rsplit("/", 1)[-1] == "baton":
            yield c


def dockerfile_json_instructions(path: Path) -> dict[str, list[list[str]]]:
    """The exec-form (JSON array) CMD, ENTRYPOINT and HEALTHCHECK CMD
    instructions of a Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out: dict[str, list[list[str]]] = {}
    for line in text.splitlines():
        m = re.match(r"\s*(CMD|ENTRYPOINT|HEALTHCHECK)\b(.*)", line)
        if not m:
            continue
        rest = m.group(2)
        if m.group(1) == "HEALTHCHECK":
            rest = rest.split(" CMD ", 1)[1] if " CMD " in rest else ""
        rest = rest.strip()
        if rest.startswith("["):
            out.setdefault(m.group(1), []).append(json.loads(rest))
    return out


# --- sections ---------------------------------------------------------------------------


def docker() -> None:
    for dockerfile in [DEPLOY / "docker" / "Dockerfile", DEPLOY / "handler" / "Dockerfile"]:
        run([tool("hadolint"), "--failure-threshold", "style", str(dockerfile)], what="hadolint")
        say(f"hadolint {rel(dockerfile)}: no findings at any level")
    server = DEPLOY / "docker" / "Dockerfile"
    text = server.read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, re.M)
    if len(stages) < 2 or "distroless" not in stages[-1]:
        fail(f"{rel(server)}: expected a build stage and a distroless final stage, got {stages}")
    user = re.findall(r"^USER\s+(\S+)", text, re.M)
    if not user or user[-1].split(":")[0] in ("0", "root"):
        fail(f"{rel(server)}: the final stage must run as a non-root USER")
    say(f"{rel(server)}: {len(stages)} stages, final {stages[-1]}, USER {user[-1]}")
    # Every path the build COPYs from the context exists and is let
    # through by the root .dockerignore (an allow-list).
    allowed = [
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    ]
    for src in re.findall(r"^COPY\s+(?!--from)(.+)\s+\S+$", text, re.M):
        for part in src.split():
            if not (ROOT / part).exists() or not any(
                part == a or part.startswith(a + "/") for a in allowed
            ):
                fail(f"{rel(server)}: COPY {part} is missing or excluded by .dockerignore")
    say(f"{rel(server)}: every COPY source exists and passes .dockerignore")
    inst = dockerfile_json_instructions(server)
    entry = inst["ENTRYPOINT"][-1]
    if entry != ["/usr/local/bin/baton"]:
        fail(f"{rel(server)}: ENTRYPOINT {entry}")
    for key in ("CMD", "HEALTHCHECK"):
        for argv in inst.get(key, []):
            argv = argv[1:] if argv[0].endswith("/baton") else argv
            check_invocation(argv, [], f"{rel(server)} {key}")


def kubernetes() -> list[dict[str, Any]]:
    k8s = DEPLOY / "k8s"
    kustomization = yaml.safe_load((k8s / "kustomization.yaml").read_text())
    kubectl = shutil.which("kubectl")
    if kubectl:
        rendered = run([kubectl, "kustomize", str(k8s)], what="kubectl kustomize")
        docs = [d for d in yaml.safe_load_all(rendered) if d]
        say(f"kubectl kustomize deploy/k8s: {len(docs)} resources rendered")
    else:
        docs = [d for r in kustomization["resources"] for d in load_all(k8s / r)]
        say(
            f"kubectl not installed: validating the {len(kustomization['resources'])} files kustomization.yaml lists, unrendered"
        )
    for name in STANDALONE:
        docs += load_all(k8s / name)
    with tempfile.TemporaryDirectory() as tmp:
        core, custom = [], []
        for i, d in enumerate(docs):
            key = (d["apiVersion"], d["kind"])
            path = Path(tmp) / f"{i:02d}-{d['kind'].lower()}-{d['metadata']['name']}.yaml"
            path.write_text(yaml.safe_dump(d))
            (custom if key in CRD_SCHEMAS else core).append((key, path))
        out = run(
            [
                tool("kubernetes-validate"),
                "-k",
                KUBERNETES_VERSION,
                "--strict",
                *[str(p) for _, p in core],
            ],
            what="kubernetes-validate",
        )
        if "Couldn't find schema" in out or "WARN" in out:
            fail(f"kubernetes-validate could not check everything:\n{out}")
        for (_, kind), path in core:
            say(
                f"kubernetes-validate -k {KUBERNETES_VERSION} --strict: {kind} {path.stem.split('-', 2)[2]}"
            )
        for key, path in custom:
            schema = CRD_SCHEMAS[key]
            run(
                [tool("check-jsonschema"), "--schemafile", str(schema), str(path)],
                what=f"{key[1]} schema",
            )
            say(
                f"check-jsonschema {rel(schema)}: {key[1]} {path.stem.split('-', 2)[2]} (a CRD kubernetes-validate has no schema for)"
            )
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    kubernetes_semantics(by_kind)
    return docs


def kubernetes_semantics(by_kind: dict[str, list[dict[str, Any]]]) -> None:
    """What the brief asks of the manifests, beyond their schemas."""
    server = next(d for d in by_kind["Deployment"] if d["metadata"]["name"] == "baton")
    pod = server["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    if server["spec"]["replicas"] < 2:
        fail("server Deployment: fewer than 2 replicas")
    if (
        c["livenessProbe"]["httpGet"]["path"] != "/healthz"
        or c["readinessProbe"]["httpGet"]["path"] != "/readyz"
    ):
        fail("server Deployment: liveness must probe /healthz and readiness /readyz")
    drain = next((a.split("=", 1)[1] for a in c["args"] if a.startswith("--drain-timeout=")), "20s")
    drain_s = int(drain.rstrip("s"))
    pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod["terminationGracePeriodSeconds"]
    if grace <= drain_s + pre_stop:
        fail(
            f"server Deployment: terminationGracePeriodSeconds {grace} <= preStop {pre_stop}s + drain {drain_s}s"
        )
    say(
        f"server Deployment: {server['spec']['replicas']} replicas, grace {grace}s > preStop {pre_stop}s + drain {drain_s}s"
    )
    for d in by_kind["Deployment"] + by_kind["Job"]:
        p = d["spec"]["template"]["spec"]
        for ctr in p["containers"]:
            sc = ctr.get("securityContext", {})
            if not p.get("securityContext", {}).get("runAsNonRoot") or not sc.get(
                "readOnlyRootFilesystem"
            ):
                fail(
                    f"{d['kind']} {d['metadata']['name']}: needs runAsNonRoot and readOnlyRootFilesystem"
                )
            if "requests" not in ctr.get("resources", {}) or "limits" not in ctr.get(
                "resources", {}
            ):
                fail(f"{d['kind']} {d['metadata']['name']}: needs resource requests and limits")
    say(
        "every Deployment and Job: non-root, read-only root filesystem, resource requests and limits"
    )
    pdb = by_kind["PodDisruptionBudget"][0]
    if pdb["spec"]["selector"]["matchLabels"] != server["spec"]["selector"]["matchLabels"]:
        fail("PodDisruptionBudget does not select the server pods")
    svc = next(d for d in by_kind["Service"] if d["metadata"]["name"] == "baton")
    if not all(
        svc["spec"]["selector"].get(k) == v
        for k, v in server["spec"]["template"]["metadata"]["labels"].items()
    ):
        fail("Service baton does not select the server pods")
    (monitor,) = by_kind["ServiceMonitor"]
    if monitor["spec"]["endpoints"][0]["path"] != "/metrics":
        fail("ServiceMonitor does not scrape /metrics")
    say("PodDisruptionBudget, Service and ServiceMonitor select the server pods; /metrics scraped")
    (hpa,) = by_kind["HorizontalPodAutoscaler"]
    (metric,) = hpa["spec"]["metrics"]
    ext = metric["external"]["metric"]
    if (
        metric["type"] != "External"
        or ext["name"] != "baton_tasks_due"
        or "task_queue" not in ext["selector"]["matchLabels"]
    ):
        fail("HPA: expected the external metric baton_tasks_due with a task_queue selector")
    target = hpa["spec"]["scaleTargetRef"]["name"]
    if target not in [d["metadata"]["name"] for d in by_kind["Deployment"]]:
        fail(f"HPA scales {target}, which is not a Deployment here")
    say(
        f"HPA scales Deployment {target} on external metric {ext['name']}{ext['selector']['matchLabels']}"
    )
    # Each Baton container's invocation: subcommand, flags, variables.
    for d in by_kind["Deployment"] + by_kind["Job"]:
        for ctr in baton_containers(d):
            env = [e["name"] for e in ctr.get("env", [])]
            check_invocation(ctr["args"], env, f"deploy/k8s {d['kind']} {d['metadata']['name']}")


def adapter_rule(hpa_selector: dict[str, str]) -> tuple[str, str]:
    """prometheus-adapter's external rule for the HPA's metric, and its
    query as the adapter renders it for the HPA's selector."""
    (cm,) = load_all(DEPLOY / "k8s" / "prometheus-adapter-config.yaml")
    config = yaml.safe_load(cm["data"]["config.yaml"])
    rules = [r for r in config["externalRules"] if r["name"]["as"] == "baton_tasks_due"]
    if len(rules) != 1:
        fail("prometheus-adapter config: no single external rule named baton_tasks_due")
    rule = rules[0]
    series = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", rule["seriesQuery"].strip("'\""))
    if not series or not re.fullmatch(rule["name"]["matches"], series.group(0)):
        fail(
            f"prometheus-adapter rule: name.matches {rule['name']['matches']} misses {rule['seriesQuery']}"
        )
    matchers = ",".join(f'{k}="{v}"' for k, v in sorted(hpa_selector.items()))
    query = (
        rule["metricsQuery"]
        .replace("<<.Series>>", series.group(0))
        .replace("<<.LabelMatchers>>", matchers)
        .replace("<<.GroupBy>>", ",".join(sorted(hpa_selector)))
    )
    if "<<" in query:
        fail(f"prometheus-adapter rule: unrendered template in {query}")
    return series.group(0), query


def compose() -> None:
    path = DEPLOY / "compose.yaml"
    run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        what="compose schema",
    )
    say(f"check-jsonschema --builtin-schema vendor.compose-spec {rel(path)}")
    doc = yaml.safe_load(path.read_text())
    services = doc["services"]
    for name in ("postgres", "baton-1", "baton-2", "orders-handler", "prometheus"):
        if name not in services:
            fail(f"{rel(path)}: no service {name}")
    prom_file = DEPLOY / "prometheus" / "prometheus.yml"
    run([PROMTOOL, "check", "config", str(prom_file)], what="promtool check config")
    say(f"promtool check config {rel(prom_file)}")
    mounts = [v.split(":")[0] for v in services["prometheus"]["volumes"]]
    if (path.parent / mounts[0]).resolve() != prom_file:
        fail(f"{rel(path)}: prometheus does not mount {rel(prom_file)}")
    targets = {
        t
        for sc in yaml.safe_load(prom_file.read_text())["scrape_configs"]
        for s in sc["static_configs"]
        for t in s["targets"]
    }
    nodes = {f"{n}:7233" for n in ("baton-1", "baton-2")}
    if targets != nodes:
        fail(f"{rel(prom_file)} scrapes {sorted(targets)}, compose runs {sorted(nodes)}")
    say(f"{rel(prom_file)} scrapes both compose nodes")
    for name, svc in services.items():
        if svc.get("image", "").split(":")[0] != "baton" or "command" not in svc:
            continue
        argv = [re.sub(r"\$\{[^}]*\}", "x", a) for a in svc["command"]]
        check_invocation(argv, list(svc.get("environment", {})), f"{rel(path)} {name}")
        for a in svc.get("healthcheck", {}).get("test", [])[1:2]:
            if a.endswith("/baton"):
                check_invocation(
                    svc["healthcheck"]["test"][2:], [], f"{rel(path)} {name} healthcheck"
                )
    node = services["baton-1"]
    drain = next(a.split("=", 1)[1] for a in node["command"] if a.startswith("--drain-timeout="))
    if int(node["stop_grace_period"].rstrip("s")) <= int(drain.rstrip("s")):
        fail(
            f"{rel(path)}: stop_grace_period {node['stop_grace_period']} <= --drain-timeout {drain}"
        )
    say(f"{rel(path)}: stop_grace_period {node['stop_grace_period']} > --drain-timeout {drain}")


def lambda_() -> None:
    path = DEPLOY / "lambda" / "template.yaml"
    run([tool("cfn-lint"), str(path)], what="cfn-lint")
    say(f"cfn-lint {rel(path)}")

    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation's short-form intrinsics (!Ref, !Sub, !GetAtt).
    Loader.add_multi_constructor(
        "!", lambda loader, suffix, node: {suffix: loader.construct_scalar(node)}
    )
    doc = yaml.load(path.read_text(), Loader=Loader)
    env = doc["Globals"]["Function"]["Environment"]["Variables"]
    if "BATON_SIGNING_SECRET" not in env:
        fail(f"{rel(path)}: no BATON_SIGNING_SECRET for the functions")
    functions = {
        k: v for k, v in doc["Resources"].items() if v["Type"] == "AWS::Serverless::Function"
    }
    runtimes = set()
    for name, fn in functions.items():
        p = fn["Properties"]
        if p.get("FunctionUrlConfig", {}).get("AuthType") is None:
            fail(f"{rel(path)} {name}: no function URL")
        module, attr = p["Handler"].rsplit(".", 1)
        code = path.parent / p["CodeUri"]
        source = next(
            (
                code / f"{module}{ext}"
                for ext in (".py", ".ts")
                if (code / f"{module}{ext}").exists()
            ),
            None,
        )
        if source is None or not re.search(
            rf"^(export const |){attr}\s*=", source.read_text(), re.M
        ):
            fail(f"{rel(path)} {name}: Handler {p['Handler']} is not defined in {p['CodeUri']}")
        runtimes.add(p["Runtime"].rstrip("0123456789.x"))
        say(f"{rel(path)} {name}: function URL, Handler {p['Handler']} defined in {rel(source)}")
    if runtimes != {"python", "nodejs"}:
        fail(f"{rel(path)}: expected a Python and a Node.js function, got {runtimes}")
    # The handlers behind their Lambda adapters, with real pushes.
    env_py = dict(os.environ, PYTHONPATH=str(ROOT / "sdk-py" / "src"), BATON_BINARY=BATON)
    out = run(
        [
            tool("python"),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "deploy/lambda/python/test_handler.py",
        ],
        what="pytest deploy/lambda/python",
        env=env_py,
    )
    say(f"pytest deploy/lambda/python/test_handler.py: {out.strip().splitlines()[-1]}")
    ts = DEPLOY / "lambda" / "ts"
    link = ts / "node_modules" / "@baton" / "sdk"
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(ROOT / "sdk-ts", link.parent))
    run(
        [str(ROOT / "sdk-ts" / "node_modules" / ".bin" / "tsc"), "-p", str(ts)],
        what="tsc deploy/lambda/ts",
    )
    out = run(
        ["node", "--test", "dist/test/"],
        what="node --test deploy/lambda/ts",
        cwd=ts,
        env=dict(os.environ, BATON_BINARY=BATON),
    )
    passed = re.search(r"^# pass (\d+)", out, re.M)
    say(f"tsc + node --test deploy/lambda/ts: {passed.group(1) if passed else '?'} passed")


def cloudrun() -> None:
    path = DEPLOY / "cloudrun" / "service.yaml"
    schema = DEPLOY / "schemas" / "knative-service_v1.json"
    run(
        [tool("check-jsonschema"), "--schemafile", str(schema), str(path)],
        what="Knative Service schema",
    )
    say(f"check-jsonschema {rel(schema)}: {rel(path)}")
    doc = yaml.safe_load(path.read_text())
    if (doc["apiVersion"], doc["kind"]) != ("serving.knative.dev/v1", "Service"):
        fail(f"{rel(path)}: not a serving.knative.dev/v1 Service")
    tmpl = doc["spec"]["template"]
    notes = tmpl["metadata"]["annotations"]
    lo, hi = (
        int(notes["autoscaling.knative.dev/minScale"]),
        int(notes["autoscaling.knative.dev/maxScale"]),
    )
    spec = tmpl["spec"]
    # Cloud Run's own rules on top of Knative's schema.
    if (
        len(spec["containers"]) != 1
        or not 1 <= spec["containerConcurrency"] <= 1000
        or not 0 <= lo <= hi
    ):
        fail(
            f"{rel(path)}: one container, containerConcurrency 1-1000 and minScale <= maxScale required"
        )
    (c,) = spec["containers"]
    refs = [e for e in c["env"] if "valueFrom" in e]
    if not any(e["name"] == "BATON_SIGNING_SECRET" for e in refs):
        fail(f"{rel(path)}: BATON_SIGNING_SECRET must come from Secret Manager")
    for e in refs:
        key = e["valueFrom"]["secretKeyRef"]["key"]
        if key != "latest" and not key.isdigit():
            fail(f"{rel(path)}: secret {e['name']} key must be a Secret Manager version, got {key}")
    port = c["ports"][0]["containerPort"]
    if f"--port={port}" not in c["args"]:
        fail(f"{rel(path)}: uvicorn does not listen on containerPort {port}")
    say(
        f"{rel(path)}: concurrency {spec['containerConcurrency']}, instances {lo}-{hi}, secrets {[e['name'] for e in refs]}, port {port}"
    )


# --- a live node -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(what: str, probe: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except OSError:
            pass
        time.sleep(0.2)
    fail(f"timed out waiting for {what}")


@contextmanager
def process(args: list[str], **kw: Any) -> Iterator[subprocess.Popen[bytes]]:
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    try:
        yield p
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def cli(address: str, *args: str) -> str:
    return run([BATON, *args, f"--address={address}"], what=f"baton {' '.join(args[:2])}")


def dashboard_queries(dash: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            out.append((f"{panel['title']} [{t['refId']}]", t["expr"]))
    return out


def metric_names(expr: str) -> set[str]:
    """The baton_* series an expression reads (histogram suffixes folded
    into the histogram's name)."""
    names = set(re.findall(r"\b(baton_[a-z0-9_]+)", expr))
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names}


def live_node(docs: list[dict[str, Any]]) -> None:
    """Runs `baton dev` with the server Deployment's node flags and the
    example handler with the flags the manifests register it with, drives
    workflows through it, and checks the health probes, `baton health`,
    `baton migrate`, the dashboard's metrics and every PromQL expression."""
    server = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "baton")
    (c,) = server["spec"]["template"]["spec"]["containers"]
    node_flags = [a for a in c["args"][1:] if not a.startswith("--listen")]
    port, handler_port = free_port(), free_port()
    address = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BATON_")}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "baton.db"
        out = run([BATON, "migrate", f"--database-url=sqlite:{db}"], what="baton migrate", env=env)
        say(f"baton migrate (the migration Job's command): {out.strip()}")
        handler_env = dict(
            env,
            BATON_SIGNING_SECRET=CHECK_SECRET,
            PYTHONPATH=f"{ROOT / 'sdk-py' / 'src'}:{DEPLOY / 'lambda' / 'python'}",
        )
        with (
            process(
                [BATON, "dev", "--db", str(db), f"--listen=127.0.0.1:{port}", *node_flags], env=env
            ) as node,
            process(
                [
                    tool("uvicorn"),
                    "handler:app",
                    "--host=127.0.0.1",
                    f"--port={handler_port}",
                    "--log-level=warning",
                ],
                env=handler_env,
            ),
        ):
            wait_for("baton dev", lambda: http_get(f"{address}/healthz")[0] == 200)
            say(
                f"baton dev {' '.join(node_flags)}: started with the server Deployment's node flags"
            )
            for probe in ("/healthz", "/readyz", "/metrics"):
                status, _ = http_get(address + probe)
                if status != 200:
                    fail(f"GET {probe} answered {status}")
            say("GET /healthz, /readyz, /metrics (the probes and the ServiceMonitor): 200")
            for args in (["health"], ["health", "--ready"]):
                out = run([BATON, *args, f"--address={address}"], what="baton health", env=env)
                say(
                    f"baton {' '.join(args)} (the image's HEALTHCHECK, compose's healthcheck): {out.strip()}"
                )
            p = subprocess.run(
                [BATON, "health", f"--address=http://127.0.0.1:{free_port()}"],
                capture_output=True,
                env=env,
            )
            if p.returncode == 0:
                fail("baton health succeeded with nobody listening")
            say("baton health with nobody listening: exit 1")
            wait_for(
                "the example handler",
                lambda: http_get(f"http://127.0.0.1:{handler_port}/")[0] == 200,
            )
            # A handler that accepts connections and never answers.
            with socket.socket() as hung:
                hung.bind(("127.0.0.1", 0))
                hung.listen(16)
                workload(address, handler_port, hung.getsockname()[1])
                metrics_and_queries(address, docs)
            if node.poll() is not None:
                fail(
                    f"baton dev exited early: {node.stderr.read().decode() if node.stderr else ''}"
                )


def start_order(address: str, queue: str, wid: str, order: dict[str, Any]) -> None:
    """Starts the example's ProcessOrder workflow the way compose.yaml's
    comment shows."""
    cli(
        address,
        "workflow",
        "start",
        "--type=ProcessOrder",
        f"--task-queue={queue}",
        f"--id={wid}",
        "--input",
        json.dumps(order),
    )


def register(address: str, queue: str, url: str, *extra: str) -> None:
    cli(
        address,
        "endpoint",
        "register",
        f"--task-queue={queue}",
        f"--url={url}",
        f"--secret={CHECK_SECRET}",
        *extra,
    )


def workload(address: str, handler_port: int, hung_port: int) -> None:
    """Orders through the example handler, a queue whose handler is down,
    one whose handler hangs (with max_concurrency 1, so a second push
    waits), and a schedule."""
    # The registration deploy/k8s/endpoint-register-job.yaml makes.
    (job,) = load_all(DEPLOY / "k8s" / "endpoint-register-job.yaml")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    own = ("--address", "--url", "--secret", "--max-concurrency", "--task-queue")
    args = [a for a in c["args"] if not a.startswith(own)]
    queue = next(a.split("=", 1)[1] for a in c["args"] if a.startswith("--task-queue="))
    cli(
        address,
        *args,
        f"--task-queue={queue}",
        f"--url=http://127.0.0.1:{handler_port}/",
        f"--secret={CHECK_SECRET}",
        "--max-concurrency=2",
    )
    say(f"baton {' '.join(args)} --task-queue={queue}: registered the example handler")
    for i in range(8):
        start_order(
            address,
            queue,
            f"order-{i}",
            {"id": str(i), "amount_cents": 100 * i, "hold_seconds": 1 if i == 0 else 0},
        )
    for i in range(8):
        out = json.loads(
            cli(address, "workflow", "result", f"order-{i}", "--wait", "30s", "-o", "json")
        )
        want = {"reservation": f"reservation-{i}", "charge": f"charge-{i}-{100 * i}"}
        if out.get("status") != "COMPLETED" or out.get("result") != want:
            fail(f"workflow order-{i}: expected {want}, got {out}")
    say("8 ProcessOrder runs completed through the example handler (one with a durable timer)")
    # A queue whose handler is down: pushes fail and back off, its rows
    # stay due, the queue-depth gauges report them.
    register(address, "orders-down", f"http://127.0.0.1:{free_port()}/")
    start_order(address, "orders-down", "stuck", {"id": "s", "amount_cents": 1})
    register(address, "orders-hung", f"http://127.0.0.1:{hung_port}/", "--max-concurrency=1")
    for wid in ("hung-1", "hung-2"):
        start_order(address, "orders-hung", wid, {"id": "h", "amount_cents": 1})
    cli(
        address,
        "schedule",
        "create",
        "every-second",
        "--interval=1s",
        "--workflow-id=scheduled",
        "--type=ProcessOrder",
        f"--task-queue={queue}",
        "--input",
        '{"id": "sch", "amount_cents": 1}',
    )
    say("runs on a queue whose handler is down and on one whose handler hangs; a 1 s schedule")


def metrics_and_queries(address: str, docs: list[dict[str, Any]]) -> None:
    dash_path = DEPLOY / "grafana" / "baton.json"
    try:
        dash = json.loads(dash_path.read_text())
    except json.JSONDecodeError as e:
        fail(f"{rel(dash_path)}: not JSON: {e}")
    if not dash.get("uid") or not dash.get("title") or not dash.get("panels"):
        fail(f"{rel(dash_path)}: needs uid, title and panels")
    queries = dashboard_queries(dash)
    say(f"{rel(dash_path)}: valid JSON, {len(dash['panels'])} panels, {len(queries)} queries")
    used = set().union(*(metric_names(e) for _, e in queries))
    declared = set(
        re.findall(r'"(baton_[a-z0-9_]+)"', (ROOT / "src" / "telemetry" / "mod.rs").read_text())
    )
    undeclared = used - declared
    if undeclared:
        fail(
            f"{rel(dash_path)} reads metrics src/telemetry/mod.rs does not declare: {sorted(undeclared)}"
        )
    live_needed = used - NOT_LIVE
    exposed: set[str] = set()

    def scraped() -> bool:
        nonlocal exposed
        _, text = http_get(f"{address}/metrics")
        exposed = {
            re.sub(r"_(bucket|sum|count)$", "", m)
            for m in re.findall(r"^(baton_[a-z0-9_]+)", text, re.M)
        }
        return live_needed <= exposed

    deadline = time.monotonic() + 30
    while not scraped() and time.monotonic() < deadline:
        time.sleep(0.5)
    missing = live_needed - exposed
    if missing:
        fail(f"{rel(dash_path)} reads metrics the live node does not expose: {sorted(missing)}")
    say(f"all {len(live_needed)} metrics the dashboard reads are in the live node's /metrics")
    say(f"declared in src/telemetry/mod.rs but not caused by this check: {sorted(used & NOT_LIVE)}")
    _, text = http_get(f"{address}/metrics")
    with tempfile.NamedTemporaryFile("w", suffix=".prom") as f:
        f.write(text)
        f.flush()
        with open(f.name) as fh:
            p = subprocess.run(
                [PROMTOOL, "check", "metrics"], stdin=fh, capture_output=True, text=True
            )
        if p.returncode != 0:
            fail(f"promtool check metrics on the live exposition:\n{p.stdout}{p.stderr}")
    say("promtool check metrics: the live exposition lints clean")
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    selector = hpa["spec"]["metrics"][0]["external"]["metric"]["selector"]["matchLabels"]
    series, adapter_query = adapter_rule(selector)
    if series not in exposed:
        fail(f"prometheus-adapter reads {series}, which the live node does not expose")
    # promtool parses each expression as a recording rule. Grafana's
    # variables become what they stand for.
    rules: list[dict[str, str]] = []
    for i, (_, expr) in enumerate(queries):
        rules.append({"record": f"baton:dashboard_query:{i}", "expr": concrete_query(expr)})
    rules.append({"record": "baton:hpa_external:baton_tasks_due", "expr": adapter_query})
    with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
        yaml.safe_dump({"groups": [{"name": "baton-dashboard", "rules": rules}]}, f)
        f.flush()
        try:
            run([PROMTOOL, "check", "rules", f.name], what="promtool check rules")
        except CheckFailed as e:
            names = "\n".join(f"  rule {i + 1}: {title}" for i, (title, _) in enumerate(queries))
            fail(f"{e}\nrules are the dashboard's queries in order, then the HPA's:\n{names}")
    say(
        f"promtool check rules: {len(queries)} dashboard expressions and the HPA's adapter query parse"
    )
    say(f"  HPA query for {selector}: {adapter_query}")
    # The queue whose handler is down keeps rows: the HPA's query for it
    # must find them.
    _, backlog_query = adapter_rule({**selector, "task_queue": "orders-down"})
    evaluate_in_prometheus(address, [(t, concrete_query(e)) for t, e in queries], backlog_query)


def concrete_query(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced by what
    they stand for (all namespaces and task queues, a 5 minute window)."""
    return (
        expr.replace("$__rate_interval", "5m")
        .replace("$namespace", ".*")
        .replace("$task_queue", ".*")
    )


def evaluate_in_prometheus(address: str, queries: list[tuple[str, str]], hpa_query: str) -> None:
    """A real Prometheus scrapes the live node; every dashboard query must
    evaluate (vector matching errors show only then), and the HPA's query,
    for a queue with a backlog, must find that queue's series."""
    prometheus = str(Path(PROMTOOL).with_name("prometheus"))
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    target = address.removeprefix("http://")
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s"},
                    "scrape_configs": [
                        {"job_name": "baton", "static_configs": [{"targets": [target]}]}
                    ],
                }
            )
        )
        args = [
            prometheus,
            f"--config.file={config}",
            f"--storage.tsdb.path={Path(tmp) / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with process(args):

            def query(expr: str, what: str = "") -> list[dict[str, Any]]:
                url = f"{api}/query?" + urllib.parse.urlencode({"query": expr})
                status, body = http_get(url)
                answer = json.loads(body)
                if status != 200 or answer.get("status") != "success":
                    fail(
                        f"Prometheus could not evaluate {what} {expr}: {answer.get('error', body)}"
                    )
                return answer["data"]["result"]

            # Prometheus answers 503 with a plain-text body until its TSDB is open.
            wait_for(
                "Prometheus to be ready",
                lambda: http_get(f"http://127.0.0.1:{port}/-/ready")[0] == 200,
                timeout=60,
            )
            # Three scrapes, so rate() over them has two points.
            wait_for(
                "Prometheus to scrape the node",
                lambda: bool(query("count_over_time(up[1m]) >= 3")),
                timeout=60,
            )
            for title, expr in queries:
                query(expr, title)
            say(f"Prometheus 2.x scraped the node: all {len(queries)} dashboard queries evaluate")
            labelled = query('count(baton_tasks_due{task_queue!=""})')
            if not labelled:
                skip(
                    "the HPA query's value: baton_tasks_due has no task_queue label yet "
                    "(the HPA and the queue-depth panels select on it)"
                )
                return
            wait_for("the backlog's series", lambda: len(query(hpa_query, "HPA")) == 1)
            say(
                f"Prometheus: the HPA's query finds the backlog of a queue whose handler is down: {hpa_query}"
            )


SECTIONS: list[tuple[str, Callable[[], Any]]] = [
    ("Docker: deploy/docker/Dockerfile, deploy/handler/Dockerfile", docker),
    ("Compose: deploy/compose.yaml, deploy/prometheus/prometheus.yml", compose),
    ("AWS Lambda: deploy/lambda/", lambda_),
    ("Cloud Run: deploy/cloudrun/service.yaml", cloudrun),
]


def main() -> int:
    try:
        print("\n-- Kubernetes: deploy/k8s/", flush=True)
        docs = kubernetes()
        for title, section in SECTIONS:
            print(f"\n-- {title}", flush=True)
            section()
        print(
            "\n-- A live node: deploy/grafana/baton.json, probes, baton health and migrate",
            flush=True,
        )
        live_node(docs)
    except CheckFailed as e:
        print(f"\ncheck-deploy: FAILED: {e}", file=sys.stderr)
        return 1
    print("\ncheck-deploy: every deployment file checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
