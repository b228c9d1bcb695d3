#!/usr/bin/env bash
# Enqueues one Flotilla job with plain Redis commands (redis-cli only) and waits for its result.
# Run: bash examples/shell/enqueue_and_wait.sh [TYPE] [PAYLOAD_JSON]
#
# TYPE defaults to `sleep`, PAYLOAD_JSON to '{"ms": 100}'. Environment: FLOTILLA_REDIS_URL
# (redis://127.0.0.1:6379), FLOTILLA_QUEUE (default), FLOTILLA_NAMESPACE (flotilla),
# FLOTILLA_WAIT_SECONDS (30). Exit 0: completed, the result JSON on stdout. Exit 1: dead or
# cancelled, the error on stderr. Exit 2: still unfinished when the wait ran out. Exit 3: Redis
# could not be reached or refused a command. Needs the redis-cli of Redis 7 or newer (for -e).
# The keys and fields are those of docs/PROTOCOL.md.
set -euo pipefail

default_payload='{"ms": 100}'
job_type="${1:-sleep}"
payload="${2:-$default_payload}"
redis_url="${FLOTILLA_REDIS_URL:-redis://127.0.0.1:6379}"
queue="${FLOTILLA_QUEUE:-default}"
namespace="${FLOTILLA_NAMESPACE:-flotilla}"
wait_seconds="${FLOTILLA_WAIT_SECONDS:-30}"

# -e: without it redis-cli exits 0 even when Redis answers with an error.
rcli() { redis-cli -e --no-auth-warning -u "$redis_url" "$@" || exit 3; }

# An id of our own gives the job a record we can poll; without one the job would take
# the fast path and leave only an entry in the queue's `done` stream.
if [[ -r /proc/sys/kernel/random/uuid ]]; then
  job_id=$(< /proc/sys/kernel/random/uuid)
else
  job_id=$(uuidgen | tr '[:upper:]' '[:lower:]')
fi
rcli SADD "$namespace:{global}:queues" "$queue" > /dev/null
rcli XADD "$namespace:{$queue}:q" '*' id "$job_id" type "$job_type" payload "$payload" > /dev/null
echo "enqueued $job_type job $job_id on queue $queue" >&2

record="$namespace:{$queue}:job:$job_id"
# Polls every 0.1 s. Counting polls rather than reading a clock keeps this to plain bash; the
# wait is FLOTILLA_WAIT_SECONDS plus the time the polls themselves take.
polls=$(awk -v s="$wait_seconds" 'BEGIN { printf "%d", s * 10 }')
status=pending # until a worker has read the entry, there is no record yet
for (( i = 0; i < polls; i++ )); do
  status=$(rcli HGET "$record" status)
  status="${status:-pending}"
  case "$status" in
    completed)
      result=$(rcli HGET "$record" result)
      echo "${result:-null}" # a handler that returns nothing leaves it empty
      exit 0 ;;
    dead | cancelled)
      error=$(rcli HGET "$record" error)
      echo "job $job_id $status: $error" >&2
      exit 1 ;;
  esac
  sleep 0.1
done
echo "job $job_id still $status after $wait_seconds s" >&2
exit 2
