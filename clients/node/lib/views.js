// Turns what Redis keeps of a job (its record, its stream entry, its completion, the entry a job waiting in `later` becomes, or what a job waiting for its parents was given) into one status shape.

/**
 * @typedef {"waiting" | "scheduled" | "pending" | "running" | "completed" | "failed" | "dead" | "cancelled" | "expired"} StatusName
 *
 * @typedef {object} AttemptError
 * @property {number} attempt which attempt, counting from 1
 * @property {number} at when it ended, ms since the Unix epoch
 * @property {string} error
 *
 * @typedef {object} JobStatus
 * @property {string} id
 * @property {string} queue
 * @property {StatusName} status
 * @property {string | null} type
 * @property {number} attempts attempts started so far
 * @property {number | null} maxAttempts null when the job leaves it to its worker's default
 * @property {unknown} result the handler's result (parsed JSON), null until completed
 * @property {string | null} error the last error
 * @property {AttemptError[]} errors each failed attempt's error, oldest first
 * @property {unknown} payload parsed JSON; a Buffer when the job's content type is not JSON;
 *   null when not kept (a completion keeps no payload)
 * @property {number | null} runAt when the job became (or becomes) due, ms since the Unix
 *   epoch; null where that is not kept (a completion; a retry waiting without a record,
 *   which has `nextRunAt`)
 * @property {number | null} nextRunAt when a failed job's retry is due; null in any other
 *   state
 * @property {number | null} expiresAt when the job may no longer start (protocol 2.16), ms
 *   since the Unix epoch, where its record, entry or waiting entry says so: not started by
 *   then, it ends as `expired`; null when it never expires, or nothing kept says (a
 *   completion)
 * @property {string | null} group the job's group (protocol 2.17), where its record, entry
 *   or waiting entry says so; null for a job of no group, or where nothing kept says (a
 *   completion)
 */

/** @typedef {Map<string, Buffer>} Fields a hash's or a stream entry's fields */

/**
 * A job as its record holds it.
 * @param {Fields} record
 * @param {string} id
 * @param {string} queue
 * @returns {JobStatus}
 */
export function fromRecord(record, id, queue) {
  return {
    id,
    queue,
    status: /** @type {StatusName} */ (text(record, "status") ?? "pending"),
    type: text(record, "type"),
    attempts: count(record, "attempts") ?? 0,
    maxAttempts: count(record, "max_attempts"),
    result: json(text(record, "result")),
    error: text(record, "error"),
    errors: history(text(record, "errors")),
    payload: payload(record),
    runAt: count(record, "run_at"),
    // A record keeps the field after its retry went ahead: it means something only while
    // the retry waits.
    nextRunAt: text(record, "status") === "failed" ? count(record, "next_run_at") : null,
    expiresAt: expiry(record),
    group: text(record, "group") || null,
  };
}

/**
 * A job still on its stream without a record: running while its entry is in the consumer
 * group's pending list (its attempt is the entry's spent attempts plus the delivery count),
 * else pending. A job retried without a record is on a new entry that carries its past:
 * the attempts spent and their errors.
 * @param {Fields} entry
 * @param {string} id the job's id: a fast-path job's entry id, or the id that the entry
 *   carries (a job found through its id key)
 * @param {string} queue
 * @param {number | null} deliveries the entry's delivery count, null when not delivered
 * @param {string} [entryId] the entry's id, when it is not the job's
 * @returns {JobStatus}
 */
export function fromEntry(entry, id, queue, deliveries, entryId = id) {
  const spent = count(entry, "attempts") ?? 0;
  return {
    id,
    queue,
    status: deliveries === null ? "pending" : "running",
    type: text(entry, "type"),
    attempts: spent + (deliveries ?? 0),
    maxAttempts: count(entry, "max_attempts"),
    result: null,
    error: text(entry, "error") || null,
    errors: history(text(entry, "errors")),
    payload: payload(entry),
    // An entry promoted from waiting carries when it was due; a retried one, when the job
    // was enqueued; any other was due when it was added.
    runAt: count(entry, "run_at") ?? count(entry, "created_at") ?? entryTimeMs(entryId),
    nextRunAt: null,
    expiresAt: expiry(entry),
    group: text(entry, "group") || null,
  };
}

/**
 * A job waiting in `later` without a record, from the entry its id key holds and its score
 * there: `scheduled` until its first run is due, or `failed` until its retry is. The entry
 * carries what a record would: the attempts spent, the last error and each attempt's.
 * @param {import("./waiting.js").Waiting} waiting
 * @param {string} id
 * @param {string} queue
 * @param {number | null} dueMs its score in `later`; null once it left the set, or when
 *   the connection's user may not read scores
 * @returns {JobStatus}
 */
export function fromWaiting(waiting, id, queue, dueMs) {
  const { state, fields } = waiting;
  // The set's score is when a worker will take the job; the entry's `run_at` was written
  // with it and tells the same once the job has left the set.
  const due = dueMs ?? count(fields, "run_at");
  return {
    id,
    queue,
    // A job waiting its group's turn (protocol 2.17) is due now: pending, like a job on
    // the stream no worker has taken yet.
    status: state === "grouped" ? "pending" : state,
    type: text(fields, "type"),
    attempts: count(fields, "attempts") ?? 0,
    maxAttempts: count(fields, "max_attempts"),
    result: null,
    error: text(fields, "error") || null,
    errors: history(text(fields, "errors")),
    payload: payload(fields),
    runAt: state === "failed" ? null : due,
    nextRunAt: state === "failed" ? due : null,
    expiresAt: expiry(fields),
    group: text(fields, "group") || null,
  };
}

/**
 * A job waiting for its parents (protocol 2.19), from its `deps` hash: `args` are the
 * enqueue script's arguments it was given (its `job` field, unpacked: id, type, payload,
 * content type, max attempts, ..., expires at, group). It is on no stream yet, so it has
 * no due time: a delay counts from when its last parent is done.
 * @param {Buffer[]} args
 * @param {string} id
 * @param {string} queue
 * @returns {JobStatus}
 */
export function fromDeps(args, id, queue) {
  // ARGV[position] of the enqueue script, 1-based as the protocol numbers them.
  /** @param {number} position */
  const arg = (position) => args[position - 1] ?? Buffer.alloc(0);
  /** @type {Fields} */
  const fields = new Map([
    ["type", arg(2)],
    ["payload", arg(3)],
    ["content_type", arg(4)],
    ["max_attempts", arg(5)],
    ["expires_at", arg(18)],
    ["group", arg(19)],
  ]);
  return {
    id,
    queue,
    status: "waiting",
    type: text(fields, "type"),
    attempts: 0,
    // 0 would leave it to the worker's default.
    maxAttempts: count(fields, "max_attempts") || null,
    result: null,
    error: null,
    errors: [],
    payload: payload(fields),
    runAt: null,
    nextRunAt: null,
    expiresAt: expiry(fields),
    group: text(fields, "group") || null,
  };
}

/**
 * The completion of a job without a record (a fast-path job, or one found through its id
 * key) in the queue's `done` stream, which keeps no payload.
 * @param {Fields} completion
 * @param {string} id the job's id, which the completion's `id` field holds
 * @param {string} queue
 * @returns {JobStatus}
 */
export function fromCompletion(completion, id, queue) {
  return {
    id,
    queue,
    status: "completed",
    type: text(completion, "type"),
    // Left out when it took one attempt (protocol 2.11).
    attempts: count(completion, "attempts") ?? 1,
    maxAttempts: null,
    result: json(text(completion, "result")),
    error: null,
    errors: [],
    payload: null,
    runAt: null,
    nextRunAt: null,
    expiresAt: null,
    group: null,
  };
}

/**
 * The fields of an ioredis reply as a Map: a flat [name, value, ...] array (a stream
 * entry) or an object (HGETALL).
 * @param {Buffer[] | Record<string, Buffer>} reply
 * @returns {Fields}
 */
export function toFields(reply) {
  const fields = new Map();
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) fields.set(reply[i].toString("utf8"), reply[i + 1]);
  } else {
    for (const [name, value] of Object.entries(reply)) fields.set(name, value);
  }
  return fields;
}

/**
 * The completions a `done` entry holds, from its flat [name, value, ...] reply: one, or
 * from protocol 2.10 several (a worker's batch), each a run of fields that begins with `id`;
 * fields before the first `id` are every completion's.
 * @param {Buffer[]} flat
 * @returns {Fields[]}
 */
export function completionsOf(flat) {
  /** @type {Fields[]} */
  const completions = [];
  /** @type {Fields} fields before the first `id`: every completion's (its own wins) */
  const shared = new Map();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = flat[i].toString("utf8");
    if (name === "id") completions.push(new Map(shared));
    (completions.length > 0 ? completions[completions.length - 1] : shared).set(name, flat[i + 1]);
  }
  return completions.length > 0 || shared.size === 0 ? completions : [shared];
}

/**
 * The milliseconds part of a stream entry id (`<ms>-<seq>`): when Redis added it.
 * @param {string} entryId
 * @returns {number | null}
 */
function entryTimeMs(entryId) {
  const match = /^(\d+)-\d+$/.exec(entryId);
  return match ? Number(match[1]) : null;
}

/** @param {Fields} fields @param {string} name @returns {string | null} */
function text(fields, name) {
  const value = fields.get(name);
  return value === undefined ? null : value.toString("utf8");
}

/** @param {Fields} fields @param {string} name @returns {number | null} */
function count(fields, name) {
  const value = text(fields, name);
  if (value === null || value === "") return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

/**
 * When the job may no longer start; 0 means "never" wherever the protocol takes an expiry.
 * @param {Fields} fields
 * @returns {number | null}
 */
function expiry(fields) {
  return count(fields, "expires_at") || null;
}

/**
 * JSON text as a value. Empty is null, as the protocol reads an empty payload; text that
 * is not JSON is returned as it is rather than failing the whole status.
 * @param {string | null} value
 * @returns {unknown}
 */
function json(value) {
  if (value === null || value === "") return null;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/**
 * The payload in its content type: JSON is parsed; anything else (msgpack) is returned as
 * the bytes it is, for the caller to decode.
 * @param {Fields} fields
 * @returns {unknown}
 */
function payload(fields) {
  const contentType = text(fields, "content_type") ?? "";
  if (contentType === "" || contentType === "json") return json(text(fields, "payload"));
  return fields.get("payload") ?? null;
}

/**
 * The record's history of attempt errors. A missing one is empty (records written before
 * the field existed); so is one that does not decode, which the scripts would replace.
 * @param {string | null} value
 * @returns {AttemptError[]}
 */
function history(value) {
  const decoded = json(value);
  if (!Array.isArray(decoded)) return [];
  return decoded
    .filter((item) => item !== null && typeof item === "object")
    .map((item) => ({
      attempt: Number(item.attempt) || 0,
      at: Number(item.at) || 0,
      error: String(item.error ?? ""),
    }));
}
