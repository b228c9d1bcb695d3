// Enqueues one Flotilla job with plain Redis commands (ioredis, no client library) and waits for its result.
// Run: cd examples/node && npm ci && node enqueue_and_wait.mjs [TYPE] [PAYLOAD_JSON]
//
// TYPE defaults to `sleep`, PAYLOAD_JSON to '{"ms": 100}'. Environment: FLOTILLA_REDIS_URL
// (redis://127.0.0.1:6379), FLOTILLA_QUEUE (default), FLOTILLA_NAMESPACE (flotilla),
// FLOTILLA_WAIT_SECONDS (30). Exit 0: completed, the result JSON on stdout. Exit 1: dead or
// cancelled, the error on stderr. Exit 2: still unfinished when the wait ran out. Exit 3: Redis
// could not be reached or refused a command.
// The job gets an id of its own and is looked up by it as docs/PROTOCOL.md says: its record,
// when it has one, else its id key (which holds binary data while a retry waits: read it as
// a Buffer); once the job completed the key is gone and the queue's `done_ids` set says from
// which millisecond its completion is in `done`.
// The keys and fields are those of docs/PROTOCOL.md.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import Redis from "ioredis";

const [jobType = "sleep", payload = '{"ms": 100}'] = process.argv.slice(2);
const url = process.env.FLOTILLA_REDIS_URL || "redis://127.0.0.1:6379";
const queue = process.env.FLOTILLA_QUEUE || "default";
const namespace = process.env.FLOTILLA_NAMESPACE || "flotilla";
const waitSeconds = Number(process.env.FLOTILLA_WAIT_SECONDS || "30");

// `done` entries read per XRANGE while looking for a completion, and how many such reads at
// most: Flotilla's own readers look among 10 000 completions.
const DONE_PAGE = 1000;
const DONE_PAGES = 10;

// Fail fast when Redis is unreachable instead of queueing commands and reconnecting forever.
const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null });
// Kept to explain a failed command; without a listener ioredis would print it as unhandled.
let connectionError;
redis.on("error", (err) => {
  connectionError = err;
});

/** The value of `name` in a flat [field, value, ...] entry, undefined when it has none. */
function field(flat, name) {
  const at = flat.findIndex((value, i) => i % 2 === 0 && value === name);
  return at >= 0 ? flat[at + 1] : undefined;
}

/** A `done` entry's completions (each flat): a new one starts at each `id` field. */
function completionsOf(flat) {
  const completions = [];
  const shared = []; // fields before the first `id`: every completion's
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (flat[i] === "id") completions.push([]);
    (completions.length > 0 ? completions[completions.length - 1] : shared).push(flat[i], flat[i + 1]);
  }
  return completions.map((own) => [...own, ...shared]);
}

/** The job's completion in `done` (flat), at or after the millisecond its `done_ids` score names. */
async function completion(doneStream, jobId, sinceMs) {
  let start = `${sinceMs}-0`;
  for (let read = 0; read < DONE_PAGES; read++) {
    const page = await redis.xrange(doneStream, start, "+", "COUNT", DONE_PAGE);
    // An entry may hold several completions (a worker's batch), each a run of fields
    // that begins with `id`.
    for (const [, flat] of page) {
      const found = completionsOf(flat).find((fields) => field(fields, "id") === jobId);
      if (found) return found;
    }
    if (page.length < DONE_PAGE) return null;
    start = `(${page[page.length - 1][0]}`; // exclusive: on past the last entry read
  }
  return null;
}

async function enqueueAndWait() {
  await redis.connect();
  // An id of our own lets us find the job by it; without one the job's id would be its
  // entry id, and its completion would have to be searched for in the queue's `done` stream.
  const jobId = randomUUID();
  await redis.sadd(`${namespace}:{global}:queues`, queue);
  await redis.xadd(`${namespace}:{${queue}}:q`, "*", "id", jobId, "type", jobType, "payload", payload);
  console.error(`enqueued ${jobType} job ${jobId} on queue ${queue}`);

  // Where the protocol keeps the job: its record, which leads whenever there is one (a job
  // gets one when it dies, or it is handed back, reports progress or is cancelled); else
  // its id key: the id of the stream entry carrying it while it is ready or runs,
  // `scheduled …` or `failed …` while it waits in `later` for its time or a retry (the
  // rest is the entry it becomes, packed with MessagePack). Once it completed the key is
  // gone and `done_ids` scores the id by the millisecond from which its completion, with
  // the result, is in `done` (a key a protocol 2.7 worker wrote says `done <entry id>`).
  const recordKey = `${namespace}:{${queue}}:job:${jobId}`;
  const idKey = `${namespace}:{${queue}}:id:${jobId}`;
  const doneIds = `${namespace}:{${queue}}:done_ids`;
  const doneStream = `${namespace}:{${queue}}:done`;
  const deadline = Date.now() + waitSeconds * 1000;
  let status = "pending"; // until a worker has read the entry, there is neither a record nor an id key
  while (Date.now() < deadline) {
    const record = await redis.hgetall(recordKey);
    if (record.status !== undefined) {
      status = record.status;
      if (status === "completed") {
        console.log(record.result || "null"); // a handler that returns nothing leaves it empty
        return 0;
      }
      if (status === "dead" || status === "cancelled") {
        console.error(`job ${jobId} ${status}: ${record.error ?? ""}`);
        return 1;
      }
    } else {
      // As bytes: a waiting job's value is not text, and decoding it would mangle it.
      const held = await redis.getBuffer(idKey);
      const space = held === null ? -1 : held.indexOf(" ");
      const state = space < 0 ? null : held.subarray(0, space).toString();
      if (held === null) {
        // No key: completed if `done_ids` has the id, else not yet read by a worker.
        const since = await redis.zscore(doneIds, jobId);
        const done = since === null ? null : await completion(doneStream, jobId, Math.trunc(Number(since)));
        if (done !== null) {
          console.log(field(done, "result") || "null");
          return 0;
        }
      } else if (state === "done") {
        const doneId = held.subarray(space + 1).toString();
        for (const [, flat] of await redis.xrange(doneStream, doneId, doneId)) {
          console.log(field(flat, "result") || "null");
          return 0;
        }
      } else if (state === "scheduled" || state === "failed") {
        status = state === "failed" ? "failed, its retry waiting" : "scheduled";
      } else if (held !== null) {
        status = "pending or running"; // its entry waits on the stream, or a worker has it
      }
    }
    await sleep(100);
  }
  console.error(`job ${jobId} still ${status} after ${waitSeconds} s`);
  return 2;
}

try {
  process.exitCode = await enqueueAndWait();
} catch (err) {
  const cause = connectionError ? ` (${connectionError.message})` : "";
  console.error(`error: ${err.message}${cause}`);
  process.exitCode = 3;
} finally {
  // Disconnecting a connection that has already ended holds the process open for seconds.
  if (redis.status !== "end") redis.disconnect();
}
