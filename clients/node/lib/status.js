// Finds a job by id wherever the protocol keeps it: its record, its stream entry, or its completion in `done`.

import { CONSUMER_GROUP } from "./keys.js";
import { fromCompletion, fromEntry, fromRecord, toFields } from "./views.js";

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
 * The job `id` of `queue`, or null when it is nowhere: never enqueued, or trimmed by
 * retention.
 *
 * The record, the stream entry and the entry's place in the pending list are read in one
 * MULTI, so a job moving on between the reads (a fast-path job whose first failure gives it
 * a record and removes its entry) is seen in one place or the other, never in neither. A
 * fast-path job that was in none of them had completed by then, and a completion stays in
 * `done`, so that search can follow.
 *
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {import("./keys.js").Keys} keys
 * @param {string} queue
 * @param {string} id
 * @returns {Promise<import("./views.js").JobStatus | null>}
 */
export async function findJob(redis, keys, queue, id) {
  const recordKey = keys.job(queue, id);
  if (!isEntryId(id)) {
    const record = toFields(await redis.hgetallBuffer(recordKey));
    return record.size > 0 ? fromRecord(record, id, queue) : null;
  }
  const stream = keys.stream(queue);
  const replies = await redis
    .multi()
    .hgetallBuffer(recordKey)
    .xrangeBuffer(stream, id, id)
    .xpending(stream, CONSUMER_GROUP, id, id, 1)
    .exec();
  if (replies === null) throw new Error("the status read was aborted");
  const [[recordError, recordReply], [rangeError, range], [pendingError, pending]] = replies;
  if (recordError) throw recordError;
  if (rangeError) throw rangeError;
  // No group yet means no worker has read the stream: nothing of it is running.
  if (pendingError && !String(pendingError.message).startsWith("NOGROUP")) throw pendingError;

  const record = toFields(/** @type {Record<string, Buffer>} */ (recordReply));
  if (record.size > 0) return fromRecord(record, id, queue);

  const entries = /** @type {[Buffer, Buffer[]][]} */ (range);
  if (entries.length > 0) {
    const entry = toFields(entries[0][1]);
    // An entry naming a job of its own (`id`) is that job's, not a job whose id is the
    // entry id.
    if (entry.has("id")) return null;
    const delivered = /** @type {[string, string, number, number][] | null} */ (pending)?.[0];
    return fromEntry(entry, id, queue, delivered ? Number(delivered[3]) : null);
  }

  const completion = await findCompletion(redis, keys.done(queue), id);
  return completion ? fromCompletion(completion, id, queue) : null;
}

/**
 * The `done` entry of fast-path job `id`, searched from the job's enqueue time on, a page
 * at a time. The search starts at the millisecond of the job's id, not at the id itself:
 * a completion in the same millisecond as its job's entry can take a lower sequence
 * number than the job's id.
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {string} done
 * @param {string} id
 * @returns {Promise<import("./views.js").Fields | null>}
 */
async function findCompletion(redis, done, id) {
  const wanted = Buffer.from(id);
  let start = `${id.slice(0, id.indexOf("-"))}-0`;
  for (let searched = 0; searched < DONE_SEARCH_LIMIT; ) {
    const page = /** @type {[Buffer, Buffer[]][]} */ (
      await redis.xrangeBuffer(done, start, "+", "COUNT", DONE_STEP)
    );
    for (const [, flat] of page) {
      const fields = toFields(flat);
      if (fields.get("id")?.equals(wanted)) return fields;
    }
    if (page.length < DONE_STEP) return null;
    searched += page.length;
    start = `(${page[page.length - 1][0].toString("utf8")}`;
  }
  return null;
}
