#!/usr/bin/env bash
# The whole test gate: what CI runs (.ci/run) and what README.md names.
# Runnable from any directory. Steps, stopping at the first failure:
#   1. make PostgreSQL reachable and export DATABASE_URL, and Prometheus'
#      binaries (BATON_PROMETHEUS_DIR, for tests/metrics.rs);
#   2. cargo fmt --check, clippy with -D warnings, cargo test (all targets
#      plus doctests) for the whole workspace, then schemathesis over the
#      OpenAPI spec against `baton dev` and `baton serve`
#      (scripts/schemathesis.sh, a few minutes);
#   3. the deployment files under deploy/ (scripts/check-deploy.sh:
#      hadolint, kubernetes-validate, check-jsonschema, cfn-lint, promtool,
#      and the example handlers and dashboard against this build);
#   4. the Python SDK (sdk-py/), if present: ruff / pyright when
#      configured, then pytest (its venv, an editable install with the dev
#      extra, is made before step 2: cargo tests use it too);
#   5. the TypeScript SDK (sdk-ts/), if present: npm ci, lint/typecheck
#      scripts when defined, npm test;
#   6. the web UI (ui/): npm ci, the JSDoc type check, then its browser
#      tests in Debian's chromium (scripts/ensure-chromium.sh installs it)
#      against this build of `baton dev`, screenshots in
#      BATON_ARTIFACTS_DIR (default target/ui-screenshots);
#   7. the code blocks of README.md, sdk-py/README.md and sdk-ts/README.md
#      (scripts/readme_blocks.py).
# Honours CARGO_TARGET_DIR (cargo's own default otherwise) and
# BATON_PY_VENV (default sdk-py/.venv).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"

section() { printf '\n==> %s\n' "$*"; }

section "PostgreSQL"
DATABASE_URL="$(bash scripts/ensure-postgres.sh)"
export DATABASE_URL
echo "DATABASE_URL=$DATABASE_URL"

# tests/metrics.rs checks the exposition with promtool and scrapes a node
# with a real Prometheus (both from Debian's package, unpacked if missing).
section "Prometheus"
BATON_PROMETHEUS_DIR="$(bash scripts/ensure-prometheus.sh)"
export BATON_PROMETHEUS_DIR
echo "BATON_PROMETHEUS_DIR=$BATON_PROMETHEUS_DIR"

# With committed sqlx query metadata, check against it rather than asking
# the live database at compile time (`cargo sqlx prepare` refreshes it).
if [ -d .sqlx ]; then
    export SQLX_OFFLINE="${SQLX_OFFLINE:-true}"
fi

section "Rust toolchain"
cargo --version
echo "CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-<default: $root/target>}"

# The SDK's virtualenv comes first: cargo tests use it too (tests/webhooks.rs
# signs deliveries with the official `standardwebhooks` package of its dev
# extra, found through BATON_PY_VENV).
if [ -d sdk-py ]; then
    section "sdk-py: install"
    venv="${BATON_PY_VENV:-$root/sdk-py/.venv}"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    py="$venv/bin/python"
    "$py" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$py" -m pip install --quiet --disable-pip-version-check -e './sdk-py[dev]'
    export BATON_PY_VENV="$venv"
fi

section "cargo fmt --check"
cargo fmt --all -- --check

section "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

section "cargo test"
cargo test --workspace --all-targets
# --all-targets skips doctests; run them too.
cargo test --workspace --doc

# The SDK suites run their end-to-end tests against this build of the
# server (cargo test built it), never a stale one found elsewhere.
cargo build --bin baton
export BATON_BINARY="${CARGO_TARGET_DIR:-$root/target}/debug/baton"
echo "BATON_BINARY=$BATON_BINARY"

# schemathesis over openapi/openapi.yaml against `baton dev` (SQLite) and
# `baton serve` (PostgreSQL), each bounded by BATON_ST_MAX_TIME (120 s).
section "schemathesis"
bash scripts/schemathesis.sh

# Every file under deploy/ checked by its own tool, the flags they give the
# binary against its --help, the Lambda example handlers with real pushes,
# the Grafana dashboard's metrics against a live node's /metrics.
section "deploy files"
bash scripts/check-deploy.sh

if [ -d sdk-py ]; then

    # A tool runs when the project configures it; a configured tool that is
    # not installed is an error (add it to the dev extra), not a skip.
    configured() { # tool-name config-file...
        local tool="$1"
        shift
        grep -qs "^\[tool\.$tool" sdk-py/pyproject.toml && return 0
        local f
        for f in "$@"; do
            [ -f "sdk-py/$f" ] && return 0
        done
        return 1
    }
    need() {
        [ -x "$venv/bin/$1" ] || {
            echo "sdk-py configures $1 but the dev extra does not install it" >&2
            exit 1
        }
    }

    if configured ruff ruff.toml .ruff.toml; then
        section "sdk-py: ruff"
        need ruff
        (cd sdk-py && "$venv/bin/ruff" check . && "$venv/bin/ruff" format --check .)
    fi
    if configured pyright pyrightconfig.json; then
        section "sdk-py: pyright"
        need pyright
        (cd sdk-py && "$venv/bin/pyright")
    fi
    section "sdk-py: pytest"
    (cd sdk-py && "$py" -m pytest -q)
fi

if [ -d sdk-ts ]; then
    section "sdk-ts: install"
    if [ -f sdk-ts/package-lock.json ]; then
        (cd sdk-ts && npm ci --no-audit --no-fund)
    else
        echo "sdk-ts has no package-lock.json; falling back to npm install (commit the lockfile)" >&2
        (cd sdk-ts && npm install --no-audit --no-fund)
    fi
    section "sdk-ts: lint, typecheck, test"
    (cd sdk-ts && npm run --if-present lint && npm run --if-present typecheck && npm test)
fi

if [ -d ui ]; then
    # The browser tests drive the UI the binary embeds, through the TS
    # SDK's handler (its built output, which the sdk-ts section made).
    section "ui: install, typecheck"
    BATON_CHROMIUM="$(bash scripts/ensure-chromium.sh)"
    export BATON_CHROMIUM
    echo "BATON_CHROMIUM=$BATON_CHROMIUM"
    (cd ui && npm ci --no-audit --no-fund && npm run typecheck)
    section "ui: browser tests"
    [ -f sdk-ts/dist/test/e2e_helpers.js ] || (cd sdk-ts && npm ci --no-audit --no-fund && npm run build)
    export BATON_ARTIFACTS_DIR="${BATON_ARTIFACTS_DIR:-${CARGO_TARGET_DIR:-$root/target}/ui-screenshots}"
    (cd ui && npm test)
    echo "screenshots in $BATON_ARTIFACTS_DIR"
fi

if [ -d sdk-py ] && [ -d sdk-ts ]; then
    # Every code block of README.md and the SDK READMEs runs (or is marked
    # no-run): shell against baton dev, Python with the server, TypeScript
    # compiled against the SDK that npm test built, and its quickstart's
    # handler and client run against baton dev.
    section "README code blocks"
    "$venv/bin/python" scripts/readme_blocks.py
fi

section "all checks passed"
