// Turns what Redis keeps of a job (its record, its stream entry, or its completion) into one status shape.

/**
 * @typedef {"scheduled" | "pending" | "running" | "completed" | "failed" | "dead" | "cancelled"} StatusName
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
  };
}

/**
 * A job still on its stream without a record: running while its entry is in the consumer
 * group's pending list (its attempt is the entry's spent attempts plus the delivery count),
 * else pending.
 * @param {Fields} entry
 * @param {string} id the job's id: a fast-path job's entry id, or the id of its own that
 *   the entry carries (a job found through its id key)
 * @param {string} queue
 * @param {number | null} deliveries the entry's delivery count, null when not delivered
 * @returns {JobStatus}
 */
export function fromEntry(entry, id, queue, deliveries) {
  const spent = count(entry, "attempts") ?? 0;
  return {
    id,
    queue,
    status: deliveries === null ? "pending" : "running",
    type: text(entry, "type"),
    attempts: spent + (deliveries ?? 0),
    maxAttempts: count(entry, "max_attempts"),
    result: null,
    error: null,
    errors: [],
    payload: payload(entry),
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
    attempts: count(completion, "attempts") ?? 0,
    maxAttempts: null,
    result: json(text(completion, "result")),
    error: null,
    errors: [],
    payload: null,
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
