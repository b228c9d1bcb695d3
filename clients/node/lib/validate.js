// The protocol's checks on what a producer writes, made before writing so a bad job fails here, not in a worker.

import { InvalidJobError } from "./errors.js";
import { namesEntry } from "./ids.js";

/** Longest name (queue, job id, type, unique key), in UTF-8 bytes, as workers count it. */
export const MAX_NAME_BYTES = 256;

/** Most attempts a job may have. */
export const MAX_ATTEMPTS = 10000;

/**
 * The latest run time (3000-01-01T00:00:00Z) and the longest duration (ten years) a job may
 * name, in ms: within them every script's arithmetic stays on whole numbers.
 */
export const MAX_RUN_AT_MS = 32503680000000;
export const MAX_DURATION_MS = 315360000000;
const DURATION_RULE = "at most 315360000000 ms (ten years)";
const EXPIRES_AT_RULE = `whole milliseconds since the Unix epoch, from 1 to ${MAX_RUN_AT_MS} (the year 3000)`;

const NAME_RULE = "1-256 printable characters without spaces, braces or control characters";
export const JOB_ID_RULE =
  `${NAME_RULE}, and not of the form <digits>-<digits> or <queue>:<digits>-<digits>: those are a ` +
  "stream entry id and the full id of one, which name the jobs that have no id of their own";

// Control characters could forge a log line, whitespace splits names in tools, and a
// brace would break the Redis Cluster hash tag the name is put in.
const FORBIDDEN_IN_NAME = /[\p{Cc}\p{White_Space}{}]/u;

// With the `u` flag a surrogate pair is one code point, so this finds only halves of a
// pair standing alone: text with one has no UTF-8 form, and workers refuse it.
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

// Delays are whole milliseconds. Digits only, and few enough to be exact as a number.
const MS = "(\\d{1,15})";
const BACKOFF_FORMS = [
  new RegExp(`^fixed:${MS}$`),
  new RegExp(`^exponential:${MS}:${MS}$`),
  new RegExp(`^list:${MS}(,${MS})*$`),
];

/**
 * Checks a queue name, job id, job type or unique key.
 * @param {string} field
 * @param {unknown} name
 * @returns {string}
 */
export function checkName(field, name) {
  const ok =
    typeof name === "string" &&
    name.length > 0 &&
    Buffer.byteLength(name, "utf8") <= MAX_NAME_BYTES &&
    !FORBIDDEN_IN_NAME.test(name) &&
    !LONE_SURROGATE.test(name);
  if (!ok) throw new InvalidJobError(field, NAME_RULE, name);
  return name;
}

/**
 * Checks the id a producer gives its job: a name that is neither of a stream entry id's
 * form nor ends in `:<digits>-<digits>` (a full id's form, `<queue>:<entry id>`), since
 * those name the jobs without an id of their own.
 * @param {unknown} id
 * @returns {string}
 */
export function checkJobId(id) {
  try {
    checkName("id", id);
  } catch {
    throw new InvalidJobError("id", JOB_ID_RULE, id);
  }
  if (namesEntry(/** @type {string} */ (id))) throw new InvalidJobError("id", JOB_ID_RULE, id);
  return /** @type {string} */ (id);
}

/**
 * @param {unknown} value
 * @returns {number}
 */
export function checkMaxAttempts(value) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_ATTEMPTS) {
    throw new InvalidJobError("maxAttempts", `a whole number from 1 to ${MAX_ATTEMPTS}`, value);
  }
  return value;
}

/**
 * An attempt timeout. Zero is refused: there is no "no timeout", only a long one.
 * @param {unknown} value
 * @returns {number}
 */
export function checkTimeoutMs(value) {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1 || value > MAX_DURATION_MS) {
    throw new InvalidJobError("timeoutMs", `a whole number of milliseconds, at least 1 and ${DURATION_RULE}`, value);
  }
  return value;
}

/**
 * A retry policy in its wire form.
 * @param {unknown} value
 * @returns {string}
 */
export function checkBackoff(value) {
  if (
    typeof value !== "string" ||
    !BACKOFF_FORMS.some((form) => form.test(value)) ||
    (value.match(/[0-9]+/g) ?? []).some((ms) => Number(ms) > MAX_DURATION_MS)
  ) {
    throw new InvalidJobError(
      "backoff",
      "fixed:MS, exponential:BASE_MS:CAP_MS or list:MS,MS,... (whole milliseconds, each at most 315360000000: ten years)",
      value,
    );
  }
  return value;
}

/**
 * A duration option that may be zero (a delay).
 * @param {string} field
 * @param {unknown} value
 * @returns {number}
 */
export function checkDelayMs(field, value) {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0 || value > MAX_DURATION_MS) {
    throw new InvalidJobError(field, `a whole number of milliseconds, 0 or more, ${DURATION_RULE}`, value);
  }
  return value;
}

/**
 * A duration option that must be positive (a lock's TTL).
 * @param {string} field
 * @param {unknown} value
 * @returns {number}
 */
export function checkPositiveMs(field, value) {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1 || value > MAX_DURATION_MS) {
    throw new InvalidJobError(field, `a whole number of milliseconds, at least 1 and ${DURATION_RULE}`, value);
  }
  return value;
}

/**
 * A run time as milliseconds since the Unix epoch, from a Date or a number of ms.
 * @param {unknown} when
 * @returns {number}
 */
export function toRunAtMs(when) {
  const ms = when instanceof Date ? when.getTime() : when;
  if (typeof ms !== "number" || !Number.isSafeInteger(ms) || ms < 0 || ms > MAX_RUN_AT_MS) {
    throw new InvalidJobError(
      "runAt",
      "a valid Date or whole milliseconds since the Unix epoch, not before 1970 and not after the year 3000",
      when,
    );
  }
  return ms;
}

/**
 * When a job may no longer start, ms since the Unix epoch: `expiresAtMs` as given, or
 * `expiresInMs` (at least 1 ms: 0 would expire the job as it is written) after `nowMs`;
 * undefined when neither is given. Both at once are refused rather than one silently
 * winning, and so is 0 as a time, which the protocol reads as "never".
 * @param {unknown} expiresInMs
 * @param {unknown} expiresAtMs
 * @param {number} nowMs
 * @returns {number | undefined}
 */
export function toExpiresAtMs(expiresInMs, expiresAtMs, nowMs) {
  if (expiresInMs !== undefined && expiresAtMs !== undefined) {
    throw new InvalidJobError("expiresAtMs", "not together with expiresInMs: give one or the other");
  }
  if (expiresAtMs !== undefined) {
    if (
      typeof expiresAtMs !== "number" ||
      !Number.isSafeInteger(expiresAtMs) ||
      expiresAtMs < 1 ||
      expiresAtMs > MAX_RUN_AT_MS
    ) {
      throw new InvalidJobError("expiresAtMs", EXPIRES_AT_RULE, expiresAtMs);
    }
    return expiresAtMs;
  }
  if (expiresInMs === undefined) return undefined;
  const at = nowMs + checkPositiveMs("expiresInMs", expiresInMs);
  if (at > MAX_RUN_AT_MS) {
    throw new InvalidJobError("expiresInMs", `an expiry not after the year 3000 (${MAX_RUN_AT_MS} ms)`, expiresInMs);
  }
  return at;
}

/**
 * A payload as the JSON text the job carries, checked the way workers check it: it must
 * encode, be UTF-8 throughout (no lone surrogates, in keys or values), and fit the limit.
 * @param {unknown} payload
 * @param {number} maxBytes
 * @returns {string}
 */
export function encodePayload(payload, maxBytes) {
  let text;
  try {
    text = JSON.stringify(payload, (key, value) => {
      if (LONE_SURROGATE.test(key) || (typeof value === "string" && LONE_SURROGATE.test(value))) {
        throw new InvalidJobError("payload", "text must be valid Unicode (a lone surrogate has no UTF-8 form)");
      }
      return value;
    });
  } catch (error) {
    if (error instanceof InvalidJobError) throw error;
    throw new InvalidJobError("payload", `must be JSON-serializable: ${error instanceof Error ? error.message : error}`);
  }
  if (text === undefined) {
    throw new InvalidJobError("payload", "must be JSON-serializable", payload);
  }
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > maxBytes) {
    throw new InvalidJobError("payload", `at most ${maxBytes} bytes as JSON (UTF-8); it is ${bytes}`);
  }
  return text;
}

/**
 * Refuses options the call does not know, so a misspelt one (`timeout` for `timeoutMs`)
 * is an error rather than silently ignored.
 * @param {object} options
 * @param {readonly string[]} known
 */
export function checkOptionNames(options, known) {
  if (options === null || typeof options !== "object") {
    throw new InvalidJobError("options", "an object", options);
  }
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      throw new InvalidJobError(name, `not an option here; known: ${known.join(", ")}`);
    }
  }
}
