// The errors the client throws, so callers can tell a bad job from a full queue or a slow one.

/** The base of every error this client throws on purpose. */
export class FlotillaError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A job (or one of its options) that the protocol refuses, caught before anything is
 * written: a worker would otherwise bury it as undecodable.
 */
export class InvalidJobError extends FlotillaError {
  /**
   * @param {string} field the option or argument at fault, as the caller named it
   * @param {string} reason what it must be
   * @param {unknown} [value] what it was (shown escaped and shortened)
   */
  constructor(field, reason, value) {
    const shown = arguments.length > 2 ? ` (got ${describe(value)})` : "";
    super(`invalid ${field}: ${reason}${shown}`);
    /** @type {string} */
    this.field = field;
  }
}

/** The queue holds as many jobs as its cap allows (backpressure from the enqueue script). */
export class QueueFullError extends FlotillaError {
  /**
   * @param {string} queue
   * @param {string} detail the script's message
   */
  constructor(queue, detail) {
    super(detail);
    /** @type {string} */
    this.queue = queue;
  }
}

/** A job did not reach a terminal state within the time `wait` was given. */
export class WaitTimeoutError extends FlotillaError {
  /**
   * @param {string} id
   * @param {number} timeoutMs
   * @param {string | null} lastStatus the status last seen, null when the job was not found
   */
  constructor(id, timeoutMs, lastStatus) {
    super(
      `job ${id} did not finish within ${timeoutMs} ms (last status: ${lastStatus ?? "not found"})`,
    );
    /** @type {string} */
    this.id = id;
    /** @type {string | null} */
    this.lastStatus = lastStatus;
  }
}

/** Longest part of a refused value shown in a message: enough to recognise it. */
const SHOWN_CHARS = 80;

/**
 * A refused value for an error message: JSON-escaped, so a CR or LF in it cannot forge a
 * log line, and shortened.
 * @param {unknown} value
 * @returns {string}
 */
function describe(value) {
  let text;
  try {
    text = typeof value === "bigint" ? `${value}n` : JSON.stringify(value) ?? String(value);
  } catch {
    text = Object.prototype.toString.call(value);
  }
  return text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS)}…` : text;
}
