#!/usr/bin/env bash
# Makes Prometheus' `prometheus` and `promtool` binaries available to the
# metrics tests and prints the directory holding them on stdout (progress
# goes to stderr), so callers write:
#
#     BATON_PROMETHEUS_DIR="$(scripts/ensure-prometheus.sh)"; export BATON_PROMETHEUS_DIR
#
# Both come from Debian's `prometheus` package. When they are not on PATH
# the package is downloaded with `apt-get download` and unpacked into a
# cache directory (BATON_TOOLS_CACHE, default ~/.cache/baton-tools) rather
# than installed, so nothing is started or registered as a service.
set -euo pipefail

log() { printf 'ensure-prometheus: %s\n' "$*" >&2; }

if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
    dirname "$(command -v promtool)"
    exit 0
fi
cache="${BATON_TOOLS_CACHE:-$HOME/.cache/baton-tools}/prometheus"
if [ -x "$cache/usr/bin/promtool" ] && [ -x "$cache/usr/bin/prometheus" ]; then
    echo "$cache/usr/bin"
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# `apt-get download` runs as the _apt user where it can; a world-writable
# directory lets it write there.
chmod 777 "$work"
log "downloading Debian's prometheus package"
if ! (cd "$work" && apt-get download prometheus >&2 2>/dev/null); then
    log "refreshing the package lists"
    apt-get update >&2
    (cd "$work" && apt-get download prometheus >&2)
fi
mkdir -p "$cache"
dpkg-deb -x "$work"/prometheus_*.deb "$cache"
"$cache/usr/bin/promtool" --version >&2
echo "$cache/usr/bin"
