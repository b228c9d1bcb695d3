#!/usr/bin/env bash
# Runs the demo: a private redis-server (unless FLOTILLA_REDIS_URL is set), two workers,
# and a mix of jobs that succeed, retry, die, wait and arrive from a raw XADD.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-deps.sh
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo run --quiet --locked --bin flotilla -- demo "$@"
