// Batches (protocol 2.19): runs the published batch script (bundled as batch.lua), its arguments and replies, and reads a batch.
//
// A *batch* is a set of jobs whose ends are counted, with up to three callbacks, each a job of
// its own enqueued exactly once when its condition holds: `success` once every job of the
// sealed batch completed, `complete` once every job of the sealed batch ended, however, and
// `death` at the first job that ends without completing. A callback waits as a job waits for
// its parents (`waiting`), and is cancelled once its condition can no longer hold. The batch
// lives in one queue, in its `batch:<id>` hash.

import { readFileSync } from "node:fs";

import { InvalidJobError } from "./errors.js";
import { allArgs } from "./script.js";

/** The script's text, read once: it must stay byte-identical to protocol/v2/batch.lua. */
export const BATCH_LUA = readFileSync(new URL("../batch.lua", import.meta.url), "utf8");

// The command's name on an ioredis connection. Versioned, so a connection shared with code
// that bundles another revision of the script never runs the wrong one.
const COMMAND = "flotillaBatchV2";

/** A callback's kind, in the script's words, in the order the client passes them. */
export const CALLBACK_KINDS = Object.freeze(["success", "complete", "death"]);

/** The most jobs one call of the script takes; a larger batch is filled by several calls. */
export const MAX_CALL_JOBS = 20_000;

/** ARGV[5]: seal in the same call, or not. */
const SEAL = "seal";
const KEEP_OPEN = "";

/** The script's refusals, each with nothing written. */
const REFUSALS = ["BAD_BATCH", "BAD_ARG", "BAD_ID"];

/**
 * @typedef {"success" | "complete" | "death"} CallbackKind
 *
 * @typedef {object} BatchCall one call of the script: checked and placed callbacks and jobs
 * @property {"open" | "add" | "seal"} mode
 * @property {boolean} seal
 * @property {{ kind: CallbackKind, job: import("./script.js").ScriptJob }[]} callbacks
 * @property {import("./script.js").ScriptJob[]} jobs
 *
 * @typedef {object} BatchCounts a batch's counts, as the script answers them
 * @property {number} total
 * @property {number} pending not yet ended
 * @property {number} completed
 * @property {number} dead dead, and so still able to complete after an operator's retry
 * @property {number} ended cancelled, expired or deleted: over for good
 * @property {boolean} sealed no job may be added
 *
 * @typedef {object} BatchCallback
 * @property {CallbackKind} kind
 * @property {string} queue
 * @property {string} id
 * @property {"fired" | "dropped" | null} decided null while undecided
 *
 * @typedef {object} BatchMember a job of a batch
 * @property {string} queue
 * @property {string} id
 *
 * @typedef {BatchCounts & {
 *   id: string,
 *   queue: string,
 *   createdAt: number | null,
 *   finishedAt: number | null,
 *   callbacks: BatchCallback[],
 *   deadJobs: BatchMember[],
 * }} Batch a batch as its hash says it stands
 */

/**
 * Makes the script a command of the connection: ioredis sends EVALSHA and falls back to
 * EVAL the first time the server does not have it.
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 */
export function defineBatch(redis) {
  if (typeof (/** @type {any} */ (redis)[COMMAND]) !== "function") {
    redis.defineCommand(COMMAND, { lua: BATCH_LUA });
  }
}

/**
 * Opens batch `batchId` of `queue`, adds jobs to it or seals it, as `call` says; resolves to
 * its counts after the call. A refusal throws InvalidJobError naming `batch`, with the
 * script's reason (`BAD_BATCH`: the batch exists already or is not known, it is sealed, an
 * id twice or taken, too many jobs; `BAD_ARG` or `BAD_ID`: a job the enqueue script would
 * refuse); nothing was written.
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {import("./keys.js").Keys} keys
 * @param {string} queue
 * @param {string} batchId
 * @param {BatchCall} call
 * @returns {Promise<BatchCounts>}
 */
export async function runBatch(redis, keys, queue, batchId, call) {
  const args = [keys.namespace, queue, batchId, call.mode, call.seal ? SEAL : KEEP_OPEN, String(call.callbacks.length)];
  for (const { kind, job } of call.callbacks) args.push(kind, ...allArgs(job));
  args.push(String(call.jobs.length));
  for (const job of call.jobs) args.push(...allArgs(job));
  let reply;
  try {
    // The call goes where the batch's queue's stream is (a cluster client routes by it).
    // The arguments go as one array, which ioredis flattens: spread, the 380 000 of a call
    // of 20 000 jobs would overflow the stack.
    reply = await /** @type {any} */ (redis)[COMMAND](1, keys.stream(queue), args);
  } catch (error) {
    if (error instanceof Error && REFUSALS.some((code) => error.message.startsWith(`${code} `))) {
      throw new InvalidJobError("batch", error.message);
    }
    throw error;
  }
  return parseCounts(reply);
}

/**
 * A whole number as Redis answers it (a string or an integer), or null.
 * @param {unknown} value
 * @returns {number | null}
 */
function count(value) {
  const text = typeof value === "number" ? String(value) : value;
  return typeof text === "string" && /^\d+$/.test(text) ? Number(text) : null;
}

/**
 * The script's answer, `{total, pending, completed, dead, ended, sealed}`.
 * @param {unknown} reply
 * @returns {BatchCounts}
 */
export function parseCounts(reply) {
  const counts = Array.isArray(reply) && reply.length === 6 ? reply.map(count) : [];
  if (counts.length !== 6 || counts.some((n) => n === null)) {
    throw new Error(`unexpected reply from the batch script: ${JSON.stringify(reply)}`);
  }
  const [total, pending, completed, dead, ended, sealed] = /** @type {number[]} */ (counts);
  return { total, pending, completed, dead, ended, sealed: sealed === 1 };
}

/**
 * A batch from its hash's fields (`HGETALL`); null for an empty hash (no such batch, or
 * forgotten a week after it finished).
 * @param {string} batchId
 * @param {string} queue
 * @param {Record<string, string>} fields
 * @returns {Batch | null}
 */
export function parseBatch(batchId, queue, fields) {
  if (fields === null || typeof fields !== "object" || Object.keys(fields).length === 0) return null;
  /** @param {string} name */
  const number = (name) => count(fields[name] ?? "0") ?? 0;
  /** @param {string} name */
  const time = (name) => (fields[name] === undefined ? null : count(fields[name]));
  /** @type {BatchCallback[]} */
  const callbacks = [];
  for (const kind of CALLBACK_KINDS) {
    const at = fields[`cb:${kind}`];
    if (at === undefined) continue;
    const space = at.indexOf(" ");
    const done = fields[`done:${kind}`];
    callbacks.push({
      kind: /** @type {CallbackKind} */ (kind),
      queue: space < 0 ? at : at.slice(0, space),
      id: space < 0 ? "" : at.slice(space + 1),
      decided: done === "fired" || done === "dropped" ? done : null,
    });
  }
  const deadJobs = Object.keys(fields)
    .filter((name) => name.startsWith("m:"))
    .sort()
    .map((name) => {
      const ref = name.slice(2);
      const space = ref.indexOf(" ");
      return { queue: space < 0 ? ref : ref.slice(0, space), id: space < 0 ? "" : ref.slice(space + 1) };
    });
  return {
    id: batchId,
    queue,
    total: number("total"),
    pending: number("pending"),
    completed: number("completed"),
    dead: number("dead"),
    ended: number("ended"),
    sealed: fields.sealed === "1",
    createdAt: time("created_at"),
    finishedAt: time("finished_at"),
    callbacks,
    deadJobs,
  };
}
