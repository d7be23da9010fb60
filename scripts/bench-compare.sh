#!/usr/bin/env bash
# Runs baton-bench for a base revision and for the working tree, back to
# back on this machine, and prints both sets of figures, labelled:
#
#     bash scripts/bench-compare.sh BASE_REV [baton-bench args...]
#
# e.g. `bash scripts/bench-compare.sh ba5882c --workloads W1,W2,W3`.
# Both are built in release mode with one shared target directory
# (BATON_BENCH_TARGET, default /tmp/baton-bench-target), so dependencies
# compile once. Needs PostgreSQL at 127.0.0.1:5432 (scripts/ensure-postgres.sh).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
base="${1:?usage: bench-compare.sh BASE_REV [baton-bench args...]}"
shift
target="${BATON_BENCH_TARGET:-/tmp/baton-bench-target}"
tree="$(mktemp -d)"
trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || true' EXIT

bash scripts/ensure-postgres.sh >/dev/null
git worktree add --detach "$tree" "$base" >/dev/null 2>&1
(cd "$tree" && CARGO_TARGET_DIR="$target" cargo build --release --bin baton-bench -q)
cp "$target/release/baton-bench" "$target/baton-bench-base"
CARGO_TARGET_DIR="$target" cargo build --release --bin baton-bench -q

echo "== before ($base)"
"$target/baton-bench-base" "$@"
echo "== after ($(git rev-parse --short HEAD)$(git diff --quiet || echo ', with uncommitted changes'))"
"$target/release/baton-bench" "$@"
