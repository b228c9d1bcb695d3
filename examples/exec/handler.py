#!/usr/bin/env python3
# A Flotilla `exec` handler in Python: the worker runs it once per job, payload JSON on stdin, result JSON on stdout.
# Run: echo '{"text": "hi"}' | python3 examples/exec/handler.py   (a worker runs it as job type py_exec: examples/flotilla.toml)
#
# {"text": "hi"} gives {"upper": "HI", "length": 2, "attempt": 1}. {"fail": "message"} writes
# the message to stderr and exits 1: a non-zero exit fails the attempt, the job is retried with
# backoff, and the stderr ends up in the job's error (dead once its attempts are spent).
# The worker also sets FLOTILLA_JOB_ID, FLOTILLA_JOB_FULL_ID (the id that names the job anywhere), FLOTILLA_JOB_TYPE, FLOTILLA_QUEUE and FLOTILLA_MAX_ATTEMPTS.
import json
import os
import sys

payload = json.load(sys.stdin)
if not isinstance(payload, dict):
    payload = {}  # an empty payload arrives as JSON null

if "fail" in payload:
    print(payload["fail"], file=sys.stderr)
    sys.exit(1)

text = str(payload.get("text", ""))
result = {
    "upper": text.upper(),
    "length": len(text),
    "attempt": int(os.environ.get("FLOTILLA_ATTEMPT", "0")),
}
json.dump(result, sys.stdout)
