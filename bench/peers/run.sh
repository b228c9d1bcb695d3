#!/usr/bin/env bash
# Flotilla and BullMQ through the same scenarios on one private Redis, RUNS times each,
# then the median of every figure side by side in bench/peers/results/latest.md.
#
#   bench/peers/run.sh [RUNS=3] [extra flags passed to both benches]
#
# e.g. bench/peers/run.sh 5 --jobs 20000 --scenarios enqueue,drain,backlog
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

runs=3
if [[ $# -gt 0 && $1 =~ ^[0-9]+$ ]]; then
    runs=$1
    shift
fi
if ((runs < 1)); then
    echo "run.sh: RUNS must be at least 1" >&2
    exit 2
fi
extra=("$@")

for tool in node npm python3 redis-server redis-cli cargo; do
    if ! command -v "$tool" >/dev/null; then
        echo "run.sh: $tool is needed and not on PATH" >&2
        exit 1
    fi
done

if [[ ! -d $here/node_modules ]]; then
    # Some npm releases refuse `ci` over a lock file that lists optional packages for
    # other platforms only by name; `install` with the same lock file installs the same
    # versions.
    (cd "$here" && { npm ci --no-audit --no-fund || npm install --no-audit --no-fund; })
fi

cargo build --release -p flotilla-cli
flotilla="${CARGO_TARGET_DIR:-$root/target}/release/flotilla"

# Redis gets CPU 0 and both benches put their worker processes on CPU 1.
pin=()
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
    pin=(taskset -c 0)
fi
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
redis_dir="$(mktemp -d)"
"${pin[@]}" redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$redis_dir" --logfile "$redis_dir/redis.log" &
redis_pid=$!
cleanup() {
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    rm -rf "$redis_dir"
}
trap cleanup EXIT

rcli() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }
for _ in $(seq 50); do
    if rcli PING >/dev/null 2>&1; then
        break
    fi
    sleep 0.1
done
if ! rcli PING >/dev/null 2>&1; then
    echo "run.sh: redis-server did not come up on port $port:" >&2
    cat "$redis_dir/redis.log" >&2 || true
    exit 1
fi
export FLOTILLA_REDIS_URL="redis://127.0.0.1:$port"

results="$here/results"
mkdir -p "$results"
flotilla_reports=()
bullmq_reports=()
for ((i = 1; i <= runs; i++)); do
    echo "== run $i of $runs: Flotilla" >&2
    rcli FLUSHALL >/dev/null
    "$flotilla" bench --pin --json "$results/flotilla-$i.json" \
        --markdown "$results/flotilla-$i.md" "${extra[@]}"
    flotilla_reports+=("$results/flotilla-$i.json")

    echo "== run $i of $runs: BullMQ" >&2
    rcli FLUSHALL >/dev/null
    node "$here/bullmq.mjs" --pin --json "$results/bullmq-$i.json" "${extra[@]}"
    bullmq_reports+=("$results/bullmq-$i.json")
done

echo >&2
python3 "$here/compare.py" "${flotilla_reports[@]}" --peer "${bullmq_reports[@]}" \
    --markdown "$results/latest.md"
