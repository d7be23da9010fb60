#!/usr/bin/env bash
# Property-based API tests: schemathesis generates requests from
# openapi/openapi.yaml (valid and invalid ones, and stateful sequences
# along the spec's links) and checks every answer: no 5xx, only documented
# status codes, documented content types, bodies and headers that match
# their schemas (scripts/schemathesis.toml). Run twice, each with a bounded
# time budget, on loopback:
#   1. `baton dev` (SQLite in memory, time skipping, so the dev routes too);
#   2. `baton serve` on a fresh PostgreSQL database.
# Both nodes have an API key and schemathesis sends it, so the
# authenticated routes are exercised beyond their 401.
#
# scripts/test.sh calls this after the Rust tests. Standalone:
#     bash scripts/schemathesis.sh
# Environment: BATON_BINARY (default: builds target/debug/baton),
# DATABASE_URL (default: scripts/ensure-postgres.sh), BATON_ST_MAX_TIME
# (seconds per run, default 120), BATON_ST_VENV (default
# $CARGO_TARGET_DIR/schemathesis-venv), BATON_ST_BACKENDS ("dev serve").
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
version="4.32.5"
max_time="${BATON_ST_MAX_TIME:-120}"
venv="${BATON_ST_VENV:-$target/schemathesis-venv}"
backends="${BATON_ST_BACKENDS:-dev serve}"

log() { printf 'schemathesis.sh: %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/schemathesis" ] ||
    ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
    log "installing schemathesis $version into $venv"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$version"
fi

if [ -z "${BATON_BINARY:-}" ]; then
    cargo build --bin baton
    BATON_BINARY="$target/debug/baton"
fi
if [ -z "${DATABASE_URL:-}" ]; then
    DATABASE_URL="$(bash scripts/ensure-postgres.sh)"
fi

work="$(mktemp -d)"
node_pid=""
database="baton_st_$(date +%s)_$$"
stop_node() {
    if [ -n "$node_pid" ]; then
        kill "$node_pid" 2>/dev/null || true
        wait "$node_pid" 2>/dev/null || true
    fi
    node_pid=""
}
cleanup() {
    stop_node
    psql "$DATABASE_URL" -qAtc "drop database if exists $database" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The URL of database $2 on the server of URL $1.
database_url() {
    python3 - "$1" "$2" <<'EOF'
import sys
from urllib.parse import urlsplit, urlunsplit
u = urlsplit(sys.argv[1])
print(urlunsplit((u.scheme, u.netloc, "/" + sys.argv[2], u.query, u.fragment)))
EOF
}

export BATON_ST_API_KEY="st-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
status=0
for backend in $backends; do
    port="$(free_port)"
    listen="127.0.0.1:$port"
    case "$backend" in
        dev) args=(dev --db :memory: --time-skipping --listen "$listen") ;;
        serve)
            psql "$DATABASE_URL" -qAtc "create database $database" >/dev/null
            args=(serve --database-url "$(database_url "$DATABASE_URL" "$database")" --listen "$listen")
            ;;
        *) log "unknown backend $backend"; exit 2 ;;
    esac
    log "$backend: starting baton ${args[*]}"
    BATON_API_KEY="$BATON_ST_API_KEY" RUST_LOG=warn "$BATON_BINARY" "${args[@]}" \
        >"$work/$backend.log" 2>&1 &
    node_pid=$!
    for _ in $(seq 100); do
        if curl -fsS "http://$listen/readyz" >/dev/null 2>&1; then break; fi
        sleep 0.1
    done
    log "$backend: schemathesis for at most ${max_time}s"
    # Its state directory (.schemathesis) goes to the scratch directory.
    run_st() {
        (cd "$work" && "$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" \
            run "$root/openapi/openapi.yaml" --url "http://$listen" \
            --max-time "$max_time" --no-color \
            --report junit --report-dir "$work/reports-$backend") >"$work/$backend.out" 2>&1
    }
    # A run whose only problems are schemathesis' own "Runtime Error"s (an
    # exception inside the tool, such as hypothesis crashing while it
    # builds an example; no check failed, no request went wrong) is run
    # once more, and says so. Any failed check still fails the gate.
    tool_crash_only() {
        local errors
        errors="$(sed -n '/^Errors:/,/^=/p' "$work/$backend.out" | grep '🚫' || true)"
        ! grep -q '❌' "$work/$backend.out" &&
            printf '%s\n' "$errors" | grep -q 'Runtime Error' &&
            ! printf '%s\n' "$errors" | grep -vq 'Runtime Error'
    }
    ok=0
    run_st && ok=1
    if [ "$ok" = 0 ] && tool_crash_only; then
        log "$backend: schemathesis itself raised (Runtime Error, no failed check); running it once more"
        sed -n '/^Errors:/,$p' "$work/$backend.out" | head -n 5 >&2
        run_st && ok=1
    fi
    if [ "$ok" = 1 ]; then
        log "$backend: passed"
        tail -n 25 "$work/$backend.out"
    else
        status=1
        log "$backend: FAILED"
        cat "$work/$backend.out"
        log "$backend: server log (last 40 lines)"
        tail -n 40 "$work/$backend.log"
    fi
    # The key was sent and accepted: the run created namespaces (only
    # `default` exists at start), and an unauthenticated call is refused.
    created="$(curl -fsS -H "Authorization: Bearer $BATON_ST_API_KEY" \
        "http://$listen/api/v1/namespaces" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["namespaces"]))')"
    unauthenticated="$(curl -s -o /dev/null -w '%{http_code}' "http://$listen/api/v1/namespaces")"
    log "$backend: $created namespaces after the run; without the key: $unauthenticated"
    if [ "$created" -le 1 ] || [ "$unauthenticated" != 401 ]; then
        log "$backend: FAILED: the authenticated routes were not exercised"
        status=1
    fi
    stop_node
done
exit "$status"
