#!/usr/bin/env bash
# Runs the cargo-fuzz target over the inbound-webhook verifiers and
# delivery ids (fuzz/fuzz_targets/webhook_headers.rs) for a bounded time,
# then prints libFuzzer's final stats. Needs a nightly toolchain (libFuzzer
# and the address sanitizer); installs cargo-fuzz if it is missing.
#
# Not part of scripts/test.sh: the nightly sanitizer build of baton and
# all its dependencies takes many minutes.
#
#     bash scripts/fuzz.sh [seconds]     # default 60
#
# The corpus grows in fuzz/corpus/webhook_headers and crashes land in
# fuzz/artifacts/webhook_headers (both gitignored); the build is in
# fuzz/target. A crash makes this script fail with libFuzzer's exit code.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${1:-60}"
target="webhook_headers"

log() { printf 'fuzz.sh: %s\n' "$*" >&2; }

if ! rustup toolchain list | grep -q nightly; then
    log "no nightly toolchain (cargo-fuzz needs one): rustup toolchain install nightly"
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# The fuzz crate is its own workspace; keep its build in fuzz/target
# rather than in a target dir shared with the root package.
unset CARGO_TARGET_DIR
cd fuzz
mkdir -p "corpus/$target" "artifacts/$target"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

log "running $target for ${seconds}s"
status=0
cargo +nightly fuzz run "$target" "corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 2>&1 | tee "$out" || status=$?

echo
echo "final stats:"
grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs|^stat::' "$out" || true
exit "$status"
