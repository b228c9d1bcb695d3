// Finds a job by id wherever the protocol keeps it: its record, its stream entry, its place in `later`, or its completion in `done`.
//
// A job without a record is found in a few reads whatever its queue holds: a fast-path job's
// id is its entry id, and a job with an id of its own has an id key naming its entry, or
// holding the whole job while it waits in `later` for its time or a retry. Once it completed
// its key is gone and the queue's `done_ids` set holds the id, scored by the millisecond from
// which its completion is in `done` (a key written by protocol 2.7 names the completion
// instead: `done <entry id>`). A fast-path job retried without a record gets an id key too,
// under its entry id. Only a completion is searched for: a fast-path job's from its enqueue
// time on, one in `done_ids` from its score on. A job waiting for its parents (protocol
// 2.19) has an id key holding `waiting`, and what it was given is in its `deps` hash.

import { parseDependencies } from "./dependencies.js";
import { CONSUMER_GROUP } from "./keys.js";
import { completionsOf, fromCompletion, fromDeps, fromEntry, fromRecord, fromWaiting, toFields } from "./views.js";
import { parseWaiting, unpackStrings } from "./waiting.js";

/** What an id key holds while its job waits for its parents. */
const FOR_PARENTS = "waiting";

/** Entries of `done` read per step while looking for a completion. */
const DONE_STEP = 500;
/**
 * How many completions after a job's enqueue time are searched for its own, as the Rust
 * tools do: one completed later than that is reported as not found.
 */
const DONE_SEARCH_LIMIT = 50_000;

const ENTRY_ID = /^(\d+)-(\d+)$/;
const U64_LIMIT = 2n ** 64n;

/**
 * Whether `id` is a stream entry id (`<ms>-<seq>`), as a fast-path job's id is. Parts too
 * large for a stream id are not one (Redis would refuse them in XRANGE).
 * @param {string} id
 */
export function isEntryId(id) {
  const match = ENTRY_ID.exec(id);
  return match !== null && BigInt(match[1]) < U64_LIMIT && BigInt(match[2]) < U64_LIMIT;
}

/**
 * @typedef {object} JobPlace where a job's id key says it is
 * @property {boolean} completed whether `entryId` names an entry of the queue's `done`
 *   stream (its completion, the form protocol 2.7 wrote) rather than of its stream (the
 *   entry carrying it)
 * @property {string} entryId
 *
 * @typedef {object} ForParents an id key holding `waiting` (protocol 2.19): its job waits for
 *   its parents, on no stream, and what it was given is in its `deps` hash
 * @property {true} forParents
 */

/**
 * What an id key holds: the id of the stream entry carrying its job while the job waits or
 * runs, or, while the job waits in `later`, its state and the entry it becomes (binary:
 * read the key as a Buffer), or `waiting` while it waits for its parents. A key written by protocol 2.7 for a completed job holds
 * `done <done entry id>` until it expires, and is still read (a rolling upgrade); from 2.8
 * on the key goes at completion and `done_ids` remembers the id. A value of another form is
 * null, so that the lookup goes by the record and `done_ids` rather than reading a wrong
 * entry.
 * @param {Buffer | string | null} value
 * @returns {JobPlace | import("./waiting.js").Waiting | ForParents | null}
 */
export function parseIdKey(value) {
  if (value === null) return null;
  const raw = Buffer.isBuffer(value) ? value : Buffer.from(value);
  if (raw.equals(Buffer.from(FOR_PARENTS))) return { forParents: true };
  const waiting = parseWaiting(raw);
  if (waiting !== null) return waiting;
  const text = raw.toString("utf8");
  if (isEntryId(text)) return { completed: false, entryId: text };
  const doneId = text.startsWith("done ") ? text.slice("done ".length) : "";
  return isEntryId(doneId) ? { completed: true, entryId: doneId } : null;
}

/**
 * The job `id` of `queue`, or null when it is nowhere: never enqueued, or trimmed by
 * retention. A record, when there is one, always says where the job is.
 *
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {import("./keys.js").Keys} keys
 * @param {string} queue
 * @param {string} id
 * @returns {Promise<import("./views.js").JobStatus | null>}
 */
export async function findJob(redis, keys, queue, id) {
  return isEntryId(id) ? findByEntryId(redis, keys, queue, id) : findByIdKey(redis, keys, queue, id);
}

/**
 * A job whose id is an entry id: a fast-path job, or one with a record.
 *
 * The record, the stream entry, the entry's place in the pending list and the job's id key
 * are read in one MULTI, so a job moving on between the reads (a fast-path job whose
 * failure removes its entry and gives it a record, or an id key holding it while its
 * retry waits) is seen in one place or the other, never in neither. Retried without a
 * record, the job is where its id key says from then on, and once it completed `done_ids`
 * says from when its completion is in `done`. A fast-path job that was in none of them had
 * completed by then, and a completion stays in `done`, so that search can follow.
 *
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {import("./keys.js").Keys} keys
 * @param {string} queue
 * @param {string} id
 * @returns {Promise<import("./views.js").JobStatus | null>}
 */
async function findByEntryId(redis, keys, queue, id) {
  const stream = keys.stream(queue);
  const [recordReply, range, pending, value] = await transaction(
    redis
      .multi()
      .hgetallBuffer(keys.job(queue, id))
      .xrangeBuffer(stream, id, id)
      .xpending(stream, CONSUMER_GROUP, id, id, 1)
      .getBuffer(keys.idKey(queue, id)),
  );

  const record = recordIn(recordReply);
  if (record !== null) return fromRecord(record, id, queue);

  const entries = /** @type {[Buffer, Buffer[]][]} */ (range);
  if (entries.length > 0) {
    const entry = toFields(entries[0][1]);
    // An entry naming a job (`id`) is that job's, not a job whose id is the entry id.
    if (entry.has("id")) return null;
    return fromEntry(entry, id, queue, deliveries(pending));
  }

  const held = parseIdKey(/** @type {Buffer | null} */ (value));
  const found = await atHeld(redis, keys, queue, id, held);
  if (found !== null) return found;

  const completion = await findCompletion(redis, keys.done(queue), id, id.slice(0, id.indexOf("-")));
  return completion ? fromCompletion(completion, id, queue) : null;
}

/**
 * A job with an id of its own: its record, else where its id key says it is, in a few reads
 * however many jobs the queue holds.
 *
 * Each read takes the record with what it looks at (the key, the entry the key names with
 * its place in the pending list, or the completion a 2.7 key names) in one MULTI, all in
 * the queue's hash slot, so a job moving on between two reads is seen where it went: a job
 * that dies or is cancelled has a record from then on, one whose retry waits has its key
 * hold it, and one that completes leaves the stream while its key goes and `done_ids`
 * takes its id, in one step.
 *
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {import("./keys.js").Keys} keys
 * @param {string} queue
 * @param {string} id
 * @returns {Promise<import("./views.js").JobStatus | null>}
 */
async function findByIdKey(redis, keys, queue, id) {
  const [recordReply, value] = await transaction(
    redis.multi().hgetallBuffer(keys.job(queue, id)).getBuffer(keys.idKey(queue, id)),
  );
  const record = recordIn(recordReply);
  if (record !== null) return fromRecord(record, id, queue);
  return atHeld(redis, keys, queue, id, parseIdKey(/** @type {Buffer | null} */ (value)));
}

/**
 * Job `id` where its id key says it is: waiting in `later`, waiting for its parents, on a
 * stream entry, or completed (a 2.7 key naming its completion). Without a key, it
 * completed if `done_ids` has it.
 *
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {import("./keys.js").Keys} keys
 * @param {string} queue
 * @param {string} id
 * @param {JobPlace | import("./waiting.js").Waiting | ForParents | null} held
 * @param {boolean} [follow] see `atEntry`
 * @returns {Promise<import("./views.js").JobStatus | null>}
 */
async function atHeld(redis, keys, queue, id, held, follow = true) {
  if (held === null) return atDoneIds(redis, keys, queue, id);
  if ("forParents" in held) return atDeps(redis, keys, queue, id, follow);
  if ("state" in held) return fromWaiting(held, id, queue, await dueIn(redis, keys.later(queue), id));
  return held.completed
    ? atCompletion(redis, keys, queue, id, held.entryId)
    : atEntry(redis, keys, queue, id, held.entryId, follow);
}

/**
 * Job `id` in the stream entry its id key named: `pending`, or `running` while the entry is
 * in the group's pending list. An entry gone since has taken the job elsewhere, which the
 * key read with it says (its completion, most likely, or `later` when a retry waits); that
 * is followed once, when `follow`. A key naming the entry still, or no longer there,
 * leaves the job nowhere.
 *
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {import("./keys.js").Keys} keys
 * @param {string} queue
 * @param {string} id
 * @param {string} entryId
 * @param {boolean} [follow]
 * @returns {Promise<import("./views.js").JobStatus | null>}
 */
async function atEntry(redis, keys, queue, id, entryId, follow = true) {
  const stream = keys.stream(queue);
  const [recordReply, range, pending, value] = await transaction(
    redis
      .multi()
      .hgetallBuffer(keys.job(queue, id))
      .xrangeBuffer(stream, entryId, entryId)
      .xpending(stream, CONSUMER_GROUP, entryId, entryId, 1)
      .getBuffer(keys.idKey(queue, id)),
  );
  const record = recordIn(recordReply);
  if (record !== null) return fromRecord(record, id, queue);
  const entry = carrying(/** @type {[Buffer, Buffer[]][]} */ (range), id);
  if (entry !== null) return fromEntry(entry, id, queue, deliveries(pending), entryId);
  const held = parseIdKey(/** @type {Buffer | null} */ (value));
  // A key naming this entry still, or another entry once one was followed, leaves the job
  // nowhere; anywhere else it is read.
  const stuck =
    held !== null && "entryId" in held && !held.completed && (!follow || held.entryId === entryId);
  return stuck ? null : atHeld(redis, keys, queue, id, held, false);
}

/**
 * Job `id` waiting for its parents, from what its `deps` hash says it was given; read with
 * its record and its id key in one MULTI. A job let go since its key was read has its key
 * name its entry (or hold it waiting in `later`), which is followed once, when `follow`;
 * one cancelled meanwhile has a record.
 *
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {import("./keys.js").Keys} keys
 * @param {string} queue
 * @param {string} id
 * @param {boolean} follow
 * @returns {Promise<import("./views.js").JobStatus | null>}
 */
async function atDeps(redis, keys, queue, id, follow) {
  const [recordReply, packed, value] = await transaction(
    redis
      .multi()
      .hgetallBuffer(keys.job(queue, id))
      .hgetBuffer(keys.deps(queue, id), "job")
      .getBuffer(keys.idKey(queue, id)),
  );
  const record = recordIn(recordReply);
  if (record !== null) return fromRecord(record, id, queue);
  const args = packed === null ? null : unpackStrings(/** @type {Buffer} */ (packed));
  if (args !== null) return fromDeps(args, id, queue);
  const held = parseIdKey(/** @type {Buffer | null} */ (value));
  const stuck = held !== null && "forParents" in held;
  return stuck || !follow ? null : atHeld(redis, keys, queue, id, held, false);
}

/**
 * What job `id` of `queue` waits or waited for, from its `deps` hash (protocol 2.19); null
 * when the hash is not there.
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {import("./keys.js").Keys} keys
 * @param {string} queue
 * @param {string} id
 * @returns {Promise<import("./dependencies.js").Dependencies | null>}
 */
export async function findDependencies(redis, keys, queue, id) {
  // Read as Buffers: a parent's result may be any text, and `job` is MessagePack.
  return parseDependencies(await redis.hgetallBuffer(keys.deps(queue, id)));
}

/**
 * Job `id` completed, from the `done` entry its id key named (the form protocol 2.7 wrote);
 * null once retention trimmed that entry.
 *
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {import("./keys.js").Keys} keys
 * @param {string} queue
 * @param {string} id
 * @param {string} doneId
 * @returns {Promise<import("./views.js").JobStatus | null>}
 */
async function atCompletion(redis, keys, queue, id, doneId) {
  const [recordReply, range] = await transaction(
    redis.multi().hgetallBuffer(keys.job(queue, id)).xrangeBuffer(keys.done(queue), doneId, doneId),
  );
  const record = recordIn(recordReply);
  if (record !== null) return fromRecord(record, id, queue);
  const entries = /** @type {[Buffer, Buffer[]][]} */ (range);
  const wanted = Buffer.from(id);
  const completion =
    entries.length === 0 ? null : completionsOf(entries[0][1]).find((fields) => fields.get("id")?.equals(wanted));
  return completion ? fromCompletion(completion, id, queue) : null;
}

/**
 * Job `id` completed without a record, once its id key went with its completion (protocol
 * 2.8): `done_ids` scores the id by the millisecond from which its completion is in
 * `done`, so two reads find it however long ago it was enqueued. Null when the set does not
 * have it (never completed, trimmed by retention, or a fast-path job never retried).
 *
 * The score is read apart from the MULTI that read the key, and only when there was no
 * key: as for `dueIn`, a user whose rule does not reach `done_ids` would otherwise have
 * every status read aborted, not only those of completed jobs. A completion deletes the
 * key and adds the id to the set in one script, so a job completed when its key was found
 * missing is in the set by this read.
 *
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {import("./keys.js").Keys} keys
 * @param {string} queue
 * @param {string} id
 * @returns {Promise<import("./views.js").JobStatus | null>}
 */
async function atDoneIds(redis, keys, queue, id) {
  const score = await redis.zscore(keys.doneIds(queue), id);
  if (score === null) return null;
  // Scores are whole milliseconds, which a double holds exactly.
  const since = Math.max(0, Math.trunc(Number(score)));
  const completion = await findCompletion(redis, keys.done(queue), id, String(since));
  return completion ? fromCompletion(completion, id, queue) : null;
}

/**
 * The record an HGETALL answered, null when there is none.
 * @param {unknown} reply
 * @returns {import("./views.js").Fields | null}
 */
function recordIn(reply) {
  const record = toFields(/** @type {Record<string, Buffer>} */ (reply));
  return record.size > 0 ? record : null;
}

/**
 * The fields of the entry an XRANGE of one id answered, when that entry names job `id`: a
 * key outliving its job could name an entry that is no longer the job's.
 * @param {[Buffer, Buffer[]][]} range
 * @param {string} id
 * @returns {import("./views.js").Fields | null}
 */
function carrying(range, id) {
  if (range.length === 0) return null;
  const fields = toFields(range[0][1]);
  // A retry of a job without an id of its own names it in `retry_of`.
  const named = fields.get("id") ?? fields.get("retry_of");
  return named?.equals(Buffer.from(id)) ? fields : null;
}

/**
 * When job `id` is due by its score in `later` (whole ms), null when it is not in the set.
 *
 * Read apart from the MULTI, and only for a job its id key says waits there: a user whose
 * rule grants no ZSCORE (NOPERM) would otherwise have every status read aborted. It then
 * reads as null, and the due time as the entry the job becomes has it.
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {string} later
 * @param {string} id
 * @returns {Promise<number | null>}
 */
async function dueIn(redis, later, id) {
  try {
    const score = await redis.zscore(later, id);
    return score === null ? null : Math.trunc(Number(score));
  } catch (error) {
    if (String(/** @type {Error} */ (error).message).startsWith("NOPERM")) return null;
    throw error;
  }
}

/**
 * The delivery count of the entry an XPENDING of one id answered, null when no consumer
 * holds it.
 * @param {unknown} pending
 * @returns {number | null}
 */
function deliveries(pending) {
  const delivered = /** @type {[string, string, number, number][] | null} */ (pending)?.[0];
  return delivered ? Number(delivered[3]) : null;
}

/**
 * The replies of a MULTI, in order; a command's error is thrown. An XPENDING on a stream
 * with no consumer group yet answers null: no worker has read the stream, so nothing of it
 * is running.
 * @param {import("ioredis").ChainableCommander} multi
 * @returns {Promise<unknown[]>}
 */
async function transaction(multi) {
  const replies = await multi.exec();
  if (replies === null) throw new Error("the status read was aborted");
  return replies.map(([error, reply]) => {
    if (error && String(error.message).startsWith("NOGROUP")) return null;
    if (error) throw error;
    return reply;
  });
}

/**
 * The `done` entry of job `id`, searched a page at a time from the millisecond `fromMs`
 * on, among at most DONE_SEARCH_LIMIT completions. A fast-path job's search starts at the
 * millisecond of its id, not at the id itself: a completion in the same millisecond as its
 * job's entry can take a lower sequence number than the job's id. A job in `done_ids`
 * starts at its score.
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {string} done
 * @param {string} id
 * @param {string} fromMs whole milliseconds since the Unix epoch, in decimal digits
 * @returns {Promise<import("./views.js").Fields | null>}
 */
async function findCompletion(redis, done, id, fromMs) {
  const wanted = Buffer.from(id);
  let start = `${fromMs}-0`;
  for (let searched = 0; searched < DONE_SEARCH_LIMIT; ) {
    const page = /** @type {[Buffer, Buffer[]][]} */ (
      await redis.xrangeBuffer(done, start, "+", "COUNT", DONE_STEP)
    );
    for (const [, flat] of page) {
      // An entry may hold several completions (protocol 2.10: a worker's batch).
      const found = completionsOf(flat).find((fields) => fields.get("id")?.equals(wanted));
      if (found) return found;
    }
    if (page.length < DONE_STEP) return null;
    searched += page.length;
    start = `(${page[page.length - 1][0].toString("utf8")}`;
  }
  return null;
}
