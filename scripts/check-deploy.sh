#!/usr/bin/env bash
# Checks every deployment file under deploy/ with a real tool, and what
# the tools cannot know (scripts/check_deploy.py):
#   - Dockerfiles: hadolint, zero findings at any level;
#   - deploy/k8s: rendered with `kubectl kustomize` (or, without kubectl, the
#     files kustomization.yaml lists), each resource validated with
#     kubernetes-validate against a pinned Kubernetes release, the
#     ServiceMonitor CRD with check-jsonschema and the schema in deploy/schemas;
#   - deploy/compose.yaml: check-jsonschema against the compose-spec schema;
#     deploy/prometheus/prometheus.yml: promtool check config;
#   - deploy/lambda/template.yaml: cfn-lint; the example handlers answer
#     real pushes of a `baton dev` through their Lambda adapters (pytest and
#     node --test);
#   - deploy/cloudrun/service.yaml: check-jsonschema against Knative's
#     Service schema (vendored), plus Cloud Run's own rules;
#   - every flag and BATON_* variable the files give the binary exists in
#     its --help; `baton health`, `baton migrate` and the probe paths work
#     on a live node;
#   - deploy/grafana/baton.json: valid JSON, every metric it reads is in a
#     live node's /metrics after real workflows, promtool parses each query
#     and a real Prometheus scraping the node evaluates it, as it does the
#     HorizontalPodAutoscaler's prometheus-adapter query.
#
# The tools are installed from PyPI into a cached venv
# (BATON_TOOLS_CACHE, default ~/.cache/baton-tools, /deploy-venv), pinned
# in scripts/deploy-tools.txt. Needs the server binary (BATON_BINARY,
# default $CARGO_TARGET_DIR/debug/baton), Prometheus' promtool
# (BATON_PROMETHEUS_DIR or scripts/ensure-prometheus.sh), and node.
# Runnable from any directory; exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"

venv="${BATON_TOOLS_CACHE:-$HOME/.cache/baton-tools}/deploy-venv"
requirements="$root/scripts/deploy-tools.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "check-deploy: installing the tools into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
fi
echo "check-deploy: tools from $venv"
"$venv/bin/hadolint" --version
echo "kubernetes-validate $("$venv/bin/kubernetes-validate" --version)"
"$venv/bin/check-jsonschema" --version
"$venv/bin/cfn-lint" --version

baton="${BATON_BINARY:-${CARGO_TARGET_DIR:-$root/target}/debug/baton}"
if [ ! -x "$baton" ]; then
    echo "check-deploy: no server binary at $baton (cargo build --bin baton, or set BATON_BINARY)" >&2
    exit 1
fi
prometheus_dir="${BATON_PROMETHEUS_DIR:-$(bash scripts/ensure-prometheus.sh)}"

# The TypeScript handler compiles against the SDK's build.
if [ ! -f sdk-ts/dist/src/index.js ] || [ ! -x sdk-ts/node_modules/.bin/tsc ]; then
    echo "check-deploy: building sdk-ts"
    (cd sdk-ts && npm ci --no-audit --no-fund && npm run build)
fi

DEPLOY_VENV="$venv" BATON_BINARY="$baton" PROMTOOL="$prometheus_dir/promtool" \
    "$venv/bin/python" scripts/check_deploy.py
