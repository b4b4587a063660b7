#!/usr/bin/env bash
# Runs every test: the Rust unit and integration tests, then the official SDKs (pinned, in a
# virtualenv under target/, outside git) against `switchyard simulate` and `switchyard serve`.
set -euo pipefail
cd "$(dirname "$0")/.."

# The bundled catalog must be exactly what its script makes from the source data.
if [ -d ../shared/data ]; then
  python3 scripts/catalog/build.py --check
else
  echo "SKIP catalog drift check: ../shared/data is not beside the repository"
fi

# --- PostgreSQL for the store tests (crates/store run every test on SQLite and on PostgreSQL) ---
# A throwaway server on a free loopback port, in a temporary directory, stopped on exit. It must
# start: CI tests PostgreSQL (.ci/run installs it). An already set SWITCHYARD_TEST_POSTGRES_URL
# (an admin URL of a server of your own) is used as it is.
if [ -z "${SWITCHYARD_TEST_POSTGRES_URL:-}" ]; then
  pg_dir=$(mktemp -d /tmp/switchyard-pg.XXXXXX)
  pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  trap 'bash scripts/pg-test-server.sh stop "$pg_dir" "$pg_port" || true' EXIT
  SWITCHYARD_TEST_POSTGRES_URL=$(bash scripts/pg-test-server.sh start "$pg_dir" "$pg_port")
  export SWITCHYARD_TEST_POSTGRES_URL
fi
echo "store tests on PostgreSQL at $SWITCHYARD_TEST_POSTGRES_URL"
# --- end PostgreSQL ---

cargo test --workspace
# The gateway's integration suite once more, every test on its own PostgreSQL database.
SWITCHYARD_IT_DATABASE=postgres cargo test -p switchyard-server --test it
cargo build -p switchyard

# The benchmark's smoke run: every phase of bench/run.sh for a moment, on the debug binaries. It
# checks that the benchmark still runs and every request is answered; it asserts no figure
# (timings are not tests). nginx is skipped, with a loud message, when it is not installed.
cargo build -p switchyard -p switchyard-bench
PATH="$PATH:/usr/sbin" target/debug/switchyard-bench run --smoke --bin target/debug/switchyard \
  --out target/bench-smoke.json

# Fuzz the stream decoders (SSE, AWS event stream) for a bounded time each: no input may panic,
# how bytes are split may not change the result, accepted event-stream messages re-encode
# exactly. cargo-fuzz on the stable toolchain, without a sanitizer (that needs nightly).
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --version 0.13.2 --locked
fi
for target in sse eventstream; do
  mkdir -p "fuzz/corpus/$target"
  (cd fuzz && cargo fuzz run --sanitizer none "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="${SWITCHYARD_FUZZ_SECONDS:-30}" -print_final_stats=1 2>&1 | tail -n 12)
done

venv=target/sdk-venv
if [ ! -x "$venv/bin/python" ] || ! cmp -s tests/sdk/requirements.txt "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
  cp tests/sdk/requirements.txt "$venv/requirements.txt"
fi
"$venv/bin/python" tests/sdk/run_sdk_tests.py target/debug/switchyard
