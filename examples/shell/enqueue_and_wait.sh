#!/usr/bin/env bash
# Enqueues one Flotilla job with plain Redis commands (redis-cli only) and waits for its result.
# Run: bash examples/shell/enqueue_and_wait.sh [TYPE] [PAYLOAD_JSON]
#
# TYPE defaults to `sleep`, PAYLOAD_JSON to '{"ms": 100}'. Environment: FLOTILLA_REDIS_URL
# (redis://127.0.0.1:6379), FLOTILLA_QUEUE (default), FLOTILLA_NAMESPACE (flotilla),
# FLOTILLA_WAIT_SECONDS (30). Exit 0: completed, the result JSON on stdout. Exit 1: dead or
# cancelled, the error on stderr. Exit 2: still unfinished when the wait ran out. Exit 3: Redis
# could not be reached or refused a command. Needs the redis-cli of Redis 7 or newer (for -e).
# The job gets an id of its own and is looked up by it as docs/PROTOCOL.md says: its record,
# when it has one, else its id key (which holds binary data while a retry waits: only its
# first word is read then); once the job completed the key is gone and the queue's
# `done_ids` set says from which millisecond its completion is in `done`.
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

# An id of our own lets us find the job by it; without one the job's id would be its
# entry id, and its completion would have to be searched for in the queue's `done` stream.
if [[ -r /proc/sys/kernel/random/uuid ]]; then
  job_id=$(< /proc/sys/kernel/random/uuid)
else
  job_id=$(uuidgen | tr '[:upper:]' '[:lower:]')
fi
rcli SADD "$namespace:{global}:queues" "$queue" > /dev/null
rcli XADD "$namespace:{$queue}:q" '*' id "$job_id" type "$job_type" payload "$payload" > /dev/null
echo "enqueued $job_type job $job_id on queue $queue" >&2

# Where the protocol keeps the job: its record, which leads whenever there is one (a job gets
# one when it dies, or it is handed back, reports progress or is cancelled); else its id
# key: the id of the stream entry carrying it while it is ready or runs, `scheduled …` or
# `failed …` while it waits in `later` for its time or a retry (the rest is the entry it
# becomes, packed with MessagePack). Once it completed the key is gone and `done_ids` scores
# the id by the millisecond from which its completion, with the result, is in `done` (a key
# a protocol 2.7 worker wrote says `done <entry id>`).
record="$namespace:{$queue}:job:$job_id"
id_key="$namespace:{$queue}:id:$job_id"
done_ids="$namespace:{$queue}:done_ids"
done_stream="$namespace:{$queue}:done"

# The result of the job's completion among entries of `done` that redis-cli printed one
# element a line (each entry's id, then its fields and values in turn); exit status 1 when
# the job's is not among them. An entry may hold several completions, each beginning with
# its `id` field; one without `result` returned nothing. From the job's `id`, fields and
# values are read in pairs up to `result`, or up to the next completion's `id` or the next
# entry (an empty result is printed then). An empty result that ended the output is
# missing from it (command substitution drops trailing newlines): `result` as the last
# line is that.
result_of() {
  awk -v job="$job_id" '
    done { next }
    found && (NR - at) % 2 == 1 && ($0 == "id" || $0 ~ /^[0-9]+-[0-9]+$/) { print ""; done = 1; next }
    found && (NR - at) % 2 == 1 { field = $0; next }
    found { if (field == "result") { print; done = 1 }; next }
    prev == "id" && $0 == job { found = 1; at = NR }
    { prev = $0 }
    END { if (found && !done) print ""; exit found ? 0 : 1 }'
}
# Polls every 0.1 s. Counting polls rather than reading a clock keeps this to plain bash; the
# wait is FLOTILLA_WAIT_SECONDS plus the time the polls themselves take.
polls=$(awk -v s="$wait_seconds" 'BEGIN { printf "%d", s * 10 }')
status=pending # until a worker has read the entry, there is neither a record nor an id key
for (( i = 0; i < polls; i++ )); do
  state=$(rcli HGET "$record" status)
  case "$state" in
    completed)
      result=$(rcli HGET "$record" result)
      echo "${result:-null}" # a handler that returns nothing leaves it empty
      exit 0 ;;
    dead | cancelled)
      error=$(rcli HGET "$record" error)
      echo "job $job_id $state: $error" >&2
      exit 1 ;;
    "")
      # No record: the id key says where the job is. A waiting job's value is binary, and
      # bash cannot hold its NUL bytes in a variable: they are dropped, since only the
      # first word of that value is read.
      held=$(rcli GET "$id_key" | tr -d '\0')
      case "$held" in
        "")
          # No key: completed if `done_ids` has the id, else not read by a worker yet. One
          # read of the completions from that millisecond on, as many as Flotilla's own
          # readers search.
          since=$(rcli ZSCORE "$done_ids" "$job_id")
          if [[ -n "$since" ]]; then
            completions=$(rcli XRANGE "$done_stream" "${since%%.*}-0" + COUNT 10000)
            if result=$(result_of <<< "$completions"); then
              echo "${result:-null}"
              exit 0
            fi
          fi ;;
        "done "*)
          done_id="${held#done }"
          # The completion as lines: its entry id, then each field and its value in turn.
          completion=$(rcli XRANGE "$done_stream" "$done_id" "$done_id")
          if [[ -n "$completion" ]]; then
            result=$(awk 'NR > 1 && NR % 2 == 0 { field = $0; next }
                          NR > 1 && field == "result" { print; exit }' <<< "$completion")
            echo "${result:-null}"
            exit 0
          fi ;;
        "scheduled "*) status="scheduled" ;;
        "failed "*) status="failed, its retry waiting" ;;
        ?*) status="pending or running" ;; # its entry waits on the stream, or a worker has it
      esac ;;
    *) status="$state" ;;
  esac
  sleep 0.1
done
echo "job $job_id still $status after $wait_seconds s" >&2
exit 2
