#!/usr/bin/env bash
# The benchmark in one command (BENCHMARKS.md): builds the release binaries, installs nginx with
# apt-get when it is missing, then runs every phase and prints the table. Arguments go to
# `switchyard-bench run` (`--smoke`, `--out FILE`, `--phases LIST`, `--nginx-core 1`, `--no-spin`);
# the JSON lands in bench/results/latest.json by default.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

# nginx installs while the release build runs.
install_nginx() {
  echo "bench/run.sh: installing nginx (the reverse proxy the gateway is compared with)"
  local sudo="" policy_added=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  # Debian starts a freshly installed nginx on port 80 unless policy-rc.d forbids it.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq nginx-light >/dev/null || $sudo apt-get install -y -qq nginx >/dev/null
  if [ -n "$policy_added" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi
}
nginx_pid=""
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  install_nginx &
  nginx_pid=$!
fi

cargo build --release -p switchyard -p switchyard-bench

if [ -n "$nginx_pid" ] && ! wait "$nginx_pid"; then
  echo "bench/run.sh: installing nginx failed; the benchmark runs without it (no ratios)" >&2
fi

PATH="$PATH:/usr/sbin" target/release/switchyard-bench run "$@"
echo "bench/run.sh: $(($(date +%s) - started)) s in all, build included"
