// Runs the published enqueue script (bundled as enqueue.lua): its arguments, defaults and replies.

import { readFileSync } from "node:fs";

import { QueueFullError } from "./errors.js";

/** The script's text, read once: it must stay byte-identical to protocol/v2/enqueue.lua. */
export const ENQUEUE_LUA = readFileSync(new URL("../enqueue.lua", import.meta.url), "utf8");

// The command's name on an ioredis connection. Versioned, so a connection shared with code
// that bundles another revision of the script never runs the wrong one.
const COMMAND = "flotillaEnqueueV2";

/** What the script writes for an option the job leaves out (the protocol's defaults). */
export const SCRIPT_DEFAULTS = Object.freeze({
  maxAttempts: 3,
  timeoutMs: 1_800_000,
  backoff: "exponential:1000:600000",
});

const CONTENT_TYPE = "json";
const PROTOCOL_VERSION = "2";
// 0: the queue has no length cap.
const NO_QUEUE_CAP = 0;
// This client carries no trace context.
const NO_TRACE = "";
// How long a unique key is held: until the job completes, is cancelled or expires (or the TTL runs
// out first), or for the whole TTL whatever the job does.
const UNIQUE_RELEASED_WHEN_FINISHED = "finished";
const UNIQUE_HELD_FOR_TTL = "expiry";
// ARGV[16] and ARGV[17], the debounce delay and max: 0 says the job is not debounced.
const NOT_DEBOUNCED = "0";
/** ARGV[18], the expiry: 0 says the job never expires. */
const NEVER_EXPIRES = "0";
/** ARGV[19], the group: empty says the job is of no group. */
const NO_GROUP = "";

/**
 * Makes the script a command of the connection: ioredis sends EVALSHA and falls back to
 * EVAL the first time the server does not have it.
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 */
export function defineEnqueue(redis) {
  if (typeof (/** @type {any} */ (redis)[COMMAND]) !== "function") {
    redis.defineCommand(COMMAND, { lua: ENQUEUE_LUA });
  }
}

/**
 * @typedef {object} ScriptJob
 * @property {string} queue
 * @property {string} id
 * @property {string} type
 * @property {string} payload JSON text
 * @property {number} [maxAttempts]
 * @property {number} [timeoutMs]
 * @property {string} [backoff]
 * @property {number} [runAtMs] ms since the Unix epoch
 * @property {number} [delayMs] on the Redis server's clock
 * @property {{ key: string, ttlMs: number, holdForTtl?: boolean }} [unique]
 * @property {{ key: string, delayMs: number, maxMs: number }} [debounce] protocol 2.14:
 *   jobs with one key fold into the one waiting for its first run
 * @property {number} [maxQueueLen] refuse the job when the queue holds this many (ready
 *   plus scheduled); none when left out
 * @property {number} [expiresAtMs] protocol 2.16: when the job may no longer start, ms
 *   since the Unix epoch; never when left out
 * @property {string} [group] protocol 2.17: where the queue limits how many jobs of a group
 *   run at once (or, since 2.18, how fast), a job whose group has no room waits its turn;
 *   one with a time takes its turn when its time comes. Since 2.18 it may hold a unique
 *   key: it holds it while it waits its group's turn; with a time it waits for its time
 *   first, then for its turn
 */

/**
 * ARGV[1] to ARGV[15], which every call passes.
 * @param {ScriptJob} job
 * @returns {string[]}
 */
function leadingArgs(job) {
  return [
    job.id,
    job.type,
    job.payload,
    CONTENT_TYPE,
    String(job.maxAttempts ?? SCRIPT_DEFAULTS.maxAttempts),
    String(job.timeoutMs ?? SCRIPT_DEFAULTS.timeoutMs),
    job.backoff ?? SCRIPT_DEFAULTS.backoff,
    // 0 means "not set" to the script, so the epoch itself is sent as 1 ms after it.
    String(job.runAtMs === undefined ? 0 : Math.max(job.runAtMs, 1)),
    String(job.delayMs ?? 0),
    String(job.unique?.ttlMs ?? 0),
    String(job.maxQueueLen ?? NO_QUEUE_CAP),
    job.queue,
    NO_TRACE,
    PROTOCOL_VERSION,
    job.unique?.holdForTtl ? UNIQUE_HELD_FOR_TTL : UNIQUE_RELEASED_WHEN_FINISHED,
  ];
}

/**
 * All 19 of the script's arguments, none left out, as the flow script takes each of its
 * jobs (protocol 2.19): `0` or empty for what the job does not set.
 * @param {ScriptJob} job
 * @returns {string[]}
 */
export function allArgs(job) {
  return [
    ...leadingArgs(job),
    job.debounce ? String(job.debounce.delayMs) : NOT_DEBOUNCED,
    job.debounce ? String(job.debounce.maxMs) : NOT_DEBOUNCED,
    job.expiresAtMs === undefined ? NEVER_EXPIRES : String(job.expiresAtMs),
    job.group ?? NO_GROUP,
  ];
}

/**
 * Puts the job on its stream, as one entry carrying it with an id key remembering its id (a
 * job to run now with no unique key), or writes its record and puts it on its stream, or in
 * `delayed` when it is due later (a unique job of a group waiting its group's turn, once
 * its time has come, has its record `pending`, with no entry, until let through).
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {import("./keys.js").Keys} keys
 * @param {ScriptJob} job
 * @returns {Promise<{ id: string, outcome: "created" | "duplicate" | "exists" | "debounced" }>}
 *   `duplicate`: another job holds the unique key, and `id` is that job's;
 *   `exists`: a job with this id was enqueued before, and nothing changed;
 *   `debounced`: folded into the job waiting under the debounce key, and `id` is that job's.
 */
export async function runEnqueue(redis, keys, job) {
  const scriptKeys = [keys.stream(job.queue), keys.job(job.queue, job.id), keys.delayed(job.queue)];
  if (job.unique) scriptKeys.push(keys.unique(job.queue, job.unique.key));
  else if (job.debounce) scriptKeys.push(keys.debounce(job.queue, job.debounce.key));
  const args = leadingArgs(job);
  if (job.debounce && !job.unique) args.push(String(job.debounce.delayMs), String(job.debounce.maxMs));
  // The expiry is ARGV[18]: the two before it say "not debounced".
  else if (job.expiresAtMs !== undefined || job.group !== undefined) args.push(NOT_DEBOUNCED, NOT_DEBOUNCED);
  // Left out when the job never expires, as a script before 2.16 was called.
  if (job.expiresAtMs !== undefined) args.push(String(job.expiresAtMs));
  else if (job.group !== undefined) args.push(NEVER_EXPIRES);
  // ARGV[19]; left out for a job of no group, as a script before 2.17 was called.
  if (job.group !== undefined) args.push(job.group);
  let reply;
  try {
    reply = await /** @type {any} */ (redis)[COMMAND](scriptKeys.length, ...scriptKeys, ...args);
  } catch (error) {
    if (error instanceof Error && error.message.startsWith("QUEUE_FULL")) {
      throw new QueueFullError(job.queue, error.message);
    }
    throw error;
  }
  const [id, outcome] = /** @type {[string, string]} */ (reply);
  if (outcome !== "created" && outcome !== "duplicate" && outcome !== "exists" && outcome !== "debounced") {
    throw new Error(`unexpected reply from the enqueue script: ${JSON.stringify(reply)}`);
  }
  return { id, outcome };
}
