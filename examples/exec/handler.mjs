// A Flotilla `exec` handler in Node.js: the worker runs it once per job, payload JSON on stdin, result JSON on stdout.
// Run: echo '{"text": "hi"}' | node examples/exec/handler.mjs   (a worker runs it as job type node_exec: examples/flotilla.toml)
//
// {"text": "hi"} gives {"upper": "HI", "length": 2, "attempt": 1}. {"fail": "message"} writes
// the message to stderr and exits 1: a non-zero exit fails the attempt, the job is retried with
// backoff, and the stderr ends up in the job's error (dead once its attempts are spent).
// The worker also sets FLOTILLA_JOB_ID, FLOTILLA_JOB_FULL_ID (the id that names the job anywhere), FLOTILLA_JOB_TYPE, FLOTILLA_QUEUE and FLOTILLA_MAX_ATTEMPTS.
// Needs no packages.
import { text as readAll } from "node:stream/consumers";

let payload = JSON.parse(await readAll(process.stdin));
if (payload === null || typeof payload !== "object") {
  payload = {}; // an empty payload arrives as JSON null
}

if ("fail" in payload) {
  console.error(String(payload.fail));
  process.exit(1);
}

const text = String(payload.text ?? "");
const result = {
  upper: text.toUpperCase(),
  length: [...text].length, // characters, as Python's len() counts them, not UTF-16 units
  attempt: Number.parseInt(process.env.FLOTILLA_ATTEMPT ?? "0", 10),
};
process.stdout.write(JSON.stringify(result));
