# Developer shortcuts. The gate itself is scripts/test.sh (`just verify`),
# which CI runs through .ci/run.

# Format the Rust code in place.
fmt:
    cargo fmt --all

# Formatting and clippy, as the gate checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Rust tests; the Postgres suite runs only when DATABASE_URL is set.
test:
    cargo test --workspace --all-targets

# Rust tests against a local PostgreSQL (started or installed if needed).
test-pg:
    DATABASE_URL="$(bash scripts/ensure-postgres.sh)" cargo test --workspace --all-targets

# Everything CI runs: Postgres, fmt, clippy, tests, and both SDKs.
verify:
    bash scripts/test.sh
