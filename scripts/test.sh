#!/usr/bin/env bash
# Runs the whole test suite: unit, property and integration tests against real
# redis-server processes the tests start themselves. Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-deps.sh
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
cargo test --workspace --locked --features flotilla-tests/external-tools "$@"
