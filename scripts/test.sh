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

cargo test --workspace
cargo build -p switchyard

venv=target/sdk-venv
if [ ! -x "$venv/bin/python" ] || ! cmp -s tests/sdk/requirements.txt "$venv/requirements.txt"; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
  cp tests/sdk/requirements.txt "$venv/requirements.txt"
fi
"$venv/bin/python" tests/sdk/run_sdk_tests.py target/debug/switchyard
