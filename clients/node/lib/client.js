// The client: enqueues jobs (one XADD on the fast path, else the published script) and reads their status.

import { randomUUID } from "node:crypto";

import { Redis } from "ioredis";

import { MAX_CALL_JOBS, defineBatch, parseBatch, runBatch } from "./batches.js";
import { InvalidJobError, QueueFullError } from "./errors.js";
import { DEFAULT_POLICY, UNNAMED, checkPolicy, defineEnqueueFlow, runEnqueueFlow } from "./flows.js";
import { Keys } from "./keys.js";
import { parseFullId } from "./ids.js";
import { Placement, splitPartition } from "./partitions.js";
import { defineEnqueue, runEnqueue } from "./script.js";
import { findDependencies, findJob } from "./status.js";
import {
  checkBackoff,
  checkDelayMs,
  checkMaxAttempts,
  checkJobId,
  checkName,
  checkOptionNames,
  checkPositiveMs,
  checkTimeoutMs,
  encodePayload,
  toExpiresAtMs,
  toRunAtMs,
} from "./validate.js";
import { waitUntilTerminal } from "./wait.js";

const DEFAULT_NAMESPACE = "flotilla";
const DEFAULT_QUEUE = "default";
/** Workers' default `limits.max_payload_bytes` (512 KiB): a larger payload would be buried. */
const DEFAULT_MAX_PAYLOAD_BYTES = 524_288;
/** How long a unique key is held by default: an hour. */
const DEFAULT_UNIQUE_TTL_MS = 3_600_000;
const DEFAULT_WAIT_TIMEOUT_MS = 30_000;
const DEFAULT_POLL_MS = 50;

const JOB_OPTIONS = ["queue", "id", "maxAttempts", "timeoutMs", "backoff", "expiresInMs", "expiresAtMs"];
/**
 * A job of a group may wait for a time or a debounce first, or hold a unique key (protocol
 * 2.18), so every enqueue takes a group.
 */
const GROUP_OPTIONS = [...JOB_OPTIONS, "group"];
/** A job that waits for other jobs (protocol 2.19) runs now, or after a delay or at a time. */
const ENQUEUE_OPTIONS = [...GROUP_OPTIONS, "after"];
// A unique or debounced job waits for no other job: `after` is refused with its reason.
const UNIQUE_OPTIONS = [...GROUP_OPTIONS, "after", "ttlMs", "delayMs", "holdForTtl"];
const DEBOUNCE_OPTIONS = [...GROUP_OPTIONS, "after", "delayMs", "maxDelayMs"];
/** What a job of a flow takes, besides its type and payload. */
const FLOW_JOB_OPTIONS = ["type", "payload", ...ENQUEUE_OPTIONS, "delayMs", "runAt"];
const FLOW_OPTIONS = ["flowId"];
/** What a job of a batch (or a callback) takes: a flow's job's options, without `after`. */
const BATCH_JOB_OPTIONS = FLOW_JOB_OPTIONS.filter((name) => name !== "after");
const BATCH_OPTIONS = ["queue", "onSuccess", "onComplete", "onDeath", "keepOpen"];
const ADD_TO_BATCH_OPTIONS = ["queue", "seal"];
/** Each callback option and the kind the script calls it, in the order they are passed. */
const CALLBACK_OPTIONS = /** @type {const} */ ([
  ["onSuccess", "success"],
  ["onComplete", "complete"],
  ["onDeath", "death"],
]);
/** Why a job of a batch cannot wait for other jobs or hold a key. */
const NO_AFTER_IN_BATCH =
  "not in a batch: a job of a batch waits for no other job and holds no unique or debounce key " +
  "(enqueue it with enqueueFlow, or give a batch callback instead)";
/** Why a job that waits for other jobs cannot take a unique or debounce key. */
const NO_KEY_AFTER =
  "not with a unique or debounce key: a job that waits for other jobs holds neither " +
  "(enqueue it with enqueue, enqueueIn or enqueueAt)";

/**
 * @typedef {object} ClientOptions
 * @property {string} [namespace] the prefix of every key (default "flotilla")
 * @property {number} [maxPayloadBytes] largest payload accepted, as UTF-8 JSON; match the
 *   workers' `limits.max_payload_bytes` (default 524288)
 * @property {number} [maxQueueLen] cap on each queue's depth (ready plus scheduled jobs):
 *   an enqueue beyond it throws QueueFullError. None by default
 *
 * @typedef {object} JobOptions what every enqueue takes
 * @property {string} [queue] default "default"
 * @property {string} [id] the job's own id; same id twice is the same job, run once
 * @property {number} [maxAttempts] 1 to 10000
 * @property {number} [timeoutMs] how long one attempt may run, at least 1 ms
 * @property {string} [backoff] `fixed:MS`, `exponential:BASE_MS:CAP_MS` or `list:MS,MS,...`
 * @property {number} [expiresInMs] never start the job later than this long from now (by
 *   this process's clock), at least 1 ms: not started by then, it ends as `expired`, unrun
 * @property {number} [expiresAtMs] as `expiresInMs`, at this time (ms since the Unix
 *   epoch); give one or the other
 *
 * @typedef {object} GroupOption
 * @property {string} [group] the job's group (a name); where the queue's limit says
 *   `group_concurrency=N`, at most N jobs of a group run at once, where it says
 *   `group_rate=10/s`, at most that many start per interval, and the rest wait their
 *   turn (reported `pending`); a job with a time or a debounce waits its group's turn
 *   once its time comes. A unique job of a group (`enqueueUnique`) holds its key while it
 *   waits its turn; with `delayMs` it waits for its time first, then for its turn
 *
 * @typedef {object} ParentObject a job another job waits for
 * @property {string} [queue] its queue (or partition); default "default", or the queue a
 *   full id names (in a flow, the queue of the flow's job of that id)
 * @property {string} id
 * @property {"cancel" | "run" | "wait"} [policy] what the waiting job does if this one ends
 *   without completing: `cancel` (the default: it ends cancelled, unrun), `run` (it runs
 *   anyway) or `wait` (it waits for an operator's retry of the dead parent)
 *
 * @typedef {ParentObject | string} Parent a parent object, or an id: of a job of the same
 *   flow, else as `status` takes it (a full id names its queue, any other is of "default")
 *
 * @typedef {object} AfterOption
 * @property {Parent[]} [after] jobs enqueued before (protocol 2.19), in any queue, that
 *   this one waits for: it waits (reported `waiting`) until each has completed, then is
 *   enqueued as it would have been then (a delay counting from that moment)
 *
 * @typedef {JobOptions & GroupOption & AfterOption} EnqueueOptions
 *
 * @typedef {object} FlowJobOnly
 * @property {string} type
 * @property {unknown} [payload] anything JSON-serializable
 * @property {number} [delayMs] run this long after its last parent is done
 * @property {Date | number} [runAt] run no earlier than this (and not before its last
 *   parent is done)
 *
 * @typedef {EnqueueOptions & FlowJobOnly} FlowJob one job of a flow
 *
 * @typedef {object} FlowOptions
 * @property {string} [flowId] the flow's id, a name (a random UUID by default): its jobs
 *   are listed under it in its first job's queue for a week (`flotilla flows show`)
 *
 * @typedef {object} Enqueued a job of a flow as it was created
 * @property {string} id
 * @property {string} queue the queue (or partition) it is in
 * @property {"created" | "waiting"} outcome `created`: it waits for nothing still running,
 *   so it was enqueued at once; `waiting`: for its parents
 *
 * @typedef {object} BatchJobOnly
 * @property {string} type
 * @property {unknown} [payload] anything JSON-serializable
 * @property {number} [delayMs] run this long after its enqueue (a callback's: after it fires)
 * @property {Date | number} [runAt] run no earlier than this
 *
 * @typedef {JobOptions & GroupOption & BatchJobOnly} BatchJob one job of a batch, or a
 *   callback; without `queue`, in the batch's queue
 *
 * @typedef {object} BatchOptions
 * @property {string} [queue] where the batch's counts live (default "default"), and the
 *   queue of its jobs and callbacks that name none
 * @property {BatchJob} [onSuccess] enqueued once every job of the sealed batch completed
 * @property {BatchJob} [onComplete] enqueued once every job of the sealed batch ended
 * @property {BatchJob} [onDeath] enqueued at the first job that ends without completing
 * @property {boolean} [keepOpen] leave it open: add jobs with `addToBatch`, then `sealBatch`
 *
 * @typedef {object} BatchQueueOptions
 * @property {string} [queue] the batch's queue (default "default")
 *
 * @typedef {object} AddToBatchOptions
 * @property {string} [queue] the batch's queue (default "default")
 * @property {boolean} [seal] seal it after these jobs
 *
 * @typedef {object} UniqueOnlyOptions
 * @property {number} [ttlMs] how long the key is held at most (default an hour)
 * @property {number} [delayMs] run this long from now, on the Redis server's clock; with a
 *   group, the job then waits its group's turn, holding its key
 * @property {boolean} [holdForTtl] keep the key for the whole TTL, even after the job
 *   finishes (default false: released when it completes, is cancelled or expires)
 *
 * @typedef {EnqueueOptions & UniqueOnlyOptions} UniqueOptions
 *
 * @typedef {object} DebounceOnlyOptions
 * @property {number} delayMs run this long after the last enqueue of the key
 * @property {number} [maxDelayMs] run no later than this long after the burst's first
 *   enqueue (default: no bound)
 *
 * @typedef {EnqueueOptions & DebounceOnlyOptions} DebounceOptions
 *
 * @typedef {object} StatusOptions
 * @property {string} [queue] default "default", or the queue a full id names
 *
 * @typedef {object} PreparedJob a job's checked arguments, in the form they are written
 * @property {string} queue
 * @property {string} type
 * @property {string} payload JSON text
 * @property {string} [id]
 * @property {number} [maxAttempts]
 * @property {number} [timeoutMs]
 * @property {string} [backoff]
 * @property {number} [expiresAtMs] when the job may no longer start, ms since the Unix epoch
 *
 * @typedef {object} WaitOptions
 * @property {string} [queue] default "default", or the queue a full id names
 * @property {number} [timeoutMs] give up after this long (default 30000)
 * @property {number} [pollMs] between status reads (default 50)
 */

/**
 * Where the job `given` (an id within a queue, or a full id) is looked for, with `queue` as
 * the caller gave it (undefined or null when left out): the queue or partition and the id within
 * it, or null when a full id names another queue than `queue`.
 * @param {unknown} given
 * @param {unknown} queue
 * @returns {{ queue: string, id: string } | null}
 */
function locate(given, queue) {
  const name = parseFullId(checkName("id", given));
  const asked = queue === undefined || queue === null ? undefined : checkName("queue", queue);
  if (name.queue === null) return { queue: asked ?? DEFAULT_QUEUE, id: name.id };
  // The full id names the very queue (or partition) the job was written to.
  if (asked === undefined || asked === name.queue || splitPartition(name.queue)[0] === asked) {
    return { queue: name.queue, id: name.id };
  }
  return null;
}

/**
 * A job's group as written: checked, or undefined for a job of no group.
 * @param {unknown} group
 * @returns {string | undefined}
 */
function groupOf(group) {
  return group === undefined ? undefined : checkName("group", group);
}

/**
 * Whether `after` names any parent: a job with none is enqueued as any other.
 * @param {unknown} after
 * @returns {boolean}
 */
function hasParents(after) {
  if (after === undefined) return false;
  if (!Array.isArray(after)) {
    throw new InvalidJobError("after", "an array of parents: { queue, id, policy } or ids", after);
  }
  return after.length > 0;
}

/**
 * `<queue> <id>`, as the protocol names a job of another queue.
 * @param {string} queue
 * @param {string} id
 */
function reference(queue, id) {
  return `${queue} ${id}`;
}

/**
 * The parents `after` names, checked, by the queue each was given in. A string names the
 * job of the flow with that id (`flowIds`: id -> the queues of the flow's jobs with it), else
 * a job as `status` takes its id; so does an object without `queue`.
 * @param {unknown} after
 * @param {Map<string, Set<string>>} flowIds
 * @returns {import("./flows.js").FlowParent[]}
 */
function parentsOf(after, flowIds) {
  if (!Array.isArray(after)) {
    throw new InvalidJobError("after", "an array of parents: { queue, id, policy } or ids", after);
  }
  return after.map((given) => {
    const named = typeof given === "string" ? { id: given } : given;
    if (named === null || typeof named !== "object" || Array.isArray(named)) {
      throw new InvalidJobError("after", "a parent: { queue, id, policy } or an id", given);
    }
    // An `outcome` is an Enqueued's, which names the job it answered for.
    checkOptionNames(named, ["queue", "id", "policy", "outcome"]);
    let id = checkName("after", named.id);
    let queue = named.queue;
    if (queue === undefined) {
      const inFlow = flowIds.get(id) ?? new Set();
      if (inFlow.size > 1) throw new InvalidJobError("after", "names jobs of the flow in two queues: give its queue", id);
      if (inFlow.size === 1) {
        queue = [...inFlow][0];
      } else {
        const full = parseFullId(id);
        queue = full.queue ?? DEFAULT_QUEUE;
        id = full.id;
      }
    }
    return { queue: checkName("after", queue), id, policy: checkPolicy(named.policy ?? DEFAULT_POLICY) };
  });
}

/**
 * The jobs of each call of the batch script: at most 20 000 each, and one call (maybe of
 * none) at least.
 * @template T
 * @param {T[]} members
 * @returns {T[][]}
 */
function batchChunks(members) {
  const chunks = [];
  for (let at = 0; at < members.length; at += MAX_CALL_JOBS) chunks.push(members.slice(at, at + MAX_CALL_JOBS));
  return chunks.length > 0 ? chunks : [[]];
}

export class Client {
  /** @type {import("ioredis").Redis | import("ioredis").Cluster} */
  #redis;
  /** @type {Keys} */
  #keys;
  /** @type {number} */
  #maxPayloadBytes;
  /** @type {number | undefined} */
  #maxQueueLen;
  /** @type {Placement} */
  #placement;

  /**
   * @param {import("ioredis").Redis | import("ioredis").Cluster} redis an ioredis connection;
   *   the client defines its enqueue command on it
   * @param {ClientOptions} [options]
   */
  constructor(redis, options = {}) {
    if (redis === null || typeof redis !== "object" || typeof redis.defineCommand !== "function") {
      throw new TypeError("Client needs an ioredis connection (a Redis or Cluster instance)");
    }
    const {
      namespace = DEFAULT_NAMESPACE,
      maxPayloadBytes = DEFAULT_MAX_PAYLOAD_BYTES,
      maxQueueLen,
      ...unknown
    } = options;
    const unknownNames = Object.keys(unknown);
    if (unknownNames.length > 0) {
      throw new TypeError(
        `unknown client option ${unknownNames[0]}; known: namespace, maxPayloadBytes, maxQueueLen`,
      );
    }
    if (typeof namespace !== "string" || !/^[^\p{Cc}\p{White_Space}{}]+$/u.test(namespace)) {
      throw new TypeError("namespace must be non-empty, without spaces, braces or control characters");
    }
    if (!Number.isSafeInteger(maxPayloadBytes) || maxPayloadBytes < 1) {
      throw new TypeError("maxPayloadBytes must be a positive whole number");
    }
    if (maxQueueLen !== undefined && (!Number.isSafeInteger(maxQueueLen) || maxQueueLen < 1)) {
      throw new TypeError("maxQueueLen must be a positive whole number of jobs (leave it out for no cap)");
    }
    this.#redis = redis;
    this.#keys = new Keys(namespace);
    this.#maxPayloadBytes = maxPayloadBytes;
    this.#maxQueueLen = maxQueueLen;
    this.#placement = new Placement(redis, this.#keys);
    defineEnqueue(redis);
    defineEnqueueFlow(redis);
    defineBatch(redis);
  }

  /**
   * A client with a connection of its own to `url` (`redis://host:port/db`).
   * @param {string} url
   * @param {ClientOptions} [options]
   * @returns {Client}
   */
  static fromUrl(url, options) {
    const redis = new Redis(url);
    try {
      return new Client(redis, options);
    } catch (error) {
      // Bad options: the connection would otherwise keep the process alive.
      redis.disconnect();
      throw error;
    }
  }

  /** Closes the connection (the one passed in, too), once replies to sent commands are in. */
  async quit() {
    await this.#redis.quit();
  }

  /**
   * Enqueues a job to run now. Without `id` it takes the fast path: one XADD carrying the
   * job, whose entry id is its id. With `id` it goes through the enqueue script, which
   * writes one entry carrying the job and the id key remembering its id (a job has a record
   * only once it dies, holds a unique key or the like); enqueueing the same id again returns
   * it and runs nothing new.
   * On a queue split into partitions, a job without `id` gets a new UUID and goes through
   * the script.
   * The id returned is the job's id within its queue: an entry id (fast path) is unique
   * there only, and `fullId(queue, id)` gives the id that names the job anywhere
   * (`<queue>:<entry id>`; an id of the job's own is its full id as it is).
   * With `expiresInMs` or `expiresAtMs` the job may no longer start after that time: one
   * not started by then (its queue paused or backed up, its retry due later) ends as
   * `expired`, unrun; one already running finishes. Every enqueue takes them.
   * With `group` the job is one of a group: where the queue's limit says
   * `group_concurrency=N`, at most N jobs of a group run at once, where it says
   * `group_rate=10/s`, at most that many start per interval, and the rest wait their
   * turn (reported `pending`). A job of a group goes through the script, with a random
   * UUID unless `id` is given. `enqueueIn`, `enqueueAt` and `enqueueDebounced` take a
   * group too: their job waits for its time and then waits its group's turn as a new one
   * does. So does `enqueueUnique`: a unique job of a group holds its key while it waits
   * its group's turn; with `delayMs` it waits for its time first, then for its turn.
   * With `after` (protocol 2.19) the job waits for jobs enqueued before, in any queue: each
   * a `{ queue, id, policy }` (or an id as `status` takes it: a full id names its queue,
   * any other is of "default"). It waits (reported `waiting`) until each has completed,
   * then is enqueued as it would have been now, and its handler reads their results. If a
   * parent ends without completing, `policy` says what the job does: `cancel` (the
   * default: it ends cancelled, unrun), `run` (it runs anyway) or `wait` (it waits for an
   * operator's retry of the dead parent). It goes through the flow script, with a random
   * UUID unless `id` is given; an id taken already, a parent not known or already ended
   * under `cancel` throw InvalidJobError with the script's reason, and nothing is written.
   * `enqueueIn` and `enqueueAt` take `after` too: their delay or time counts from when the
   * last parent is done. See `enqueueFlow` for many jobs with edges between them.
   * @param {string} type
   * @param {unknown} [payload] anything JSON-serializable
   * @param {EnqueueOptions} [options]
   * @returns {Promise<string>} the job id within its queue
   */
  async enqueue(type, payload = null, options = {}) {
    checkOptionNames(options, ENQUEUE_OPTIONS);
    const { group, after, ...jobOptions } = options;
    const job = this.#prepare(type, payload, jobOptions, JOB_OPTIONS);
    if (hasParents(after)) return this.#enqueueAfter({ ...job, group: groupOf(group) }, after);
    if (group !== undefined) {
      const { id } = await this.#enqueueScripted({ ...job, id: job.id ?? randomUUID(), group: groupOf(group) });
      return id;
    }
    if (job.id === undefined && !(await this.#placement.isSplit(job.queue))) return this.#enqueueFast(job);
    // On a queue of several partitions a job gets an id of its own: entry ids are per
    // stream, so two partitions may hand out the same one, and `status` could not tell the
    // two jobs apart.
    const { id } = await this.#enqueueScripted({ ...job, id: job.id ?? randomUUID() });
    return id;
  }

  /**
   * Enqueues a job to run `delayMs` from now, on the Redis server's clock. Until then it has
   * no record: its id waits in the queue's `later` set and its id key holds the job.
   * With `group` (see `enqueue`), once its time comes the job waits its group's turn as a
   * new one does (reported `pending`). With `after` (see `enqueue`), the delay counts from
   * when its last parent is done.
   * @param {number} delayMs
   * @param {string} type
   * @param {unknown} [payload]
   * @param {EnqueueOptions} [options]
   * @returns {Promise<string>} the job id (a random UUID unless `id` is given)
   */
  async enqueueIn(delayMs, type, payload = null, options = {}) {
    const delay = checkDelayMs("delayMs", delayMs);
    checkOptionNames(options, ENQUEUE_OPTIONS);
    const { group, after, ...jobOptions } = options;
    const job = this.#prepare(type, payload, jobOptions, JOB_OPTIONS);
    if (hasParents(after)) return this.#enqueueAfter({ ...job, delayMs: delay, group: groupOf(group) }, after);
    const { id } = await this.#enqueueScripted({
      ...job,
      id: job.id ?? randomUUID(),
      delayMs: delay,
      group: groupOf(group),
    });
    return id;
  }

  /**
   * Enqueues a job to run no earlier than `when`; a time in the past runs now. It waits as
   * `enqueueIn`'s job does, with `group` too. With `after` (see `enqueue`) it runs no earlier
   * than `when` nor before its last parent is done.
   * @param {Date | number} when a Date, or milliseconds since the Unix epoch
   * @param {string} type
   * @param {unknown} [payload]
   * @param {EnqueueOptions} [options]
   * @returns {Promise<string>} the job id (a random UUID unless `id` is given)
   */
  async enqueueAt(when, type, payload = null, options = {}) {
    const runAtMs = toRunAtMs(when);
    checkOptionNames(options, ENQUEUE_OPTIONS);
    const { group, after, ...jobOptions } = options;
    const job = this.#prepare(type, payload, jobOptions, JOB_OPTIONS);
    if (hasParents(after)) return this.#enqueueAfter({ ...job, runAtMs, group: groupOf(group) }, after);
    const { id } = await this.#enqueueScripted({ ...job, id: job.id ?? randomUUID(), runAtMs, group: groupOf(group) });
    return id;
  }

  /**
   * Enqueues a job unless another holds `uniqueKey` in its queue. The key is held until
   * the job completes, is cancelled or expires, or `ttlMs` passes, whichever is first; with
   * `holdForTtl`, for the whole TTL.
   * With `group` (see `enqueue`) the job holds its key while it waits its group's turn
   * (reported `pending`), so a unique enqueue of the same key meanwhile answers its id;
   * with `delayMs` it waits for its time first (reported `scheduled`), then for its turn.
   * A unique job waits for no other job: `after` is refused (InvalidJobError).
   * @param {string} uniqueKey
   * @param {string} type
   * @param {unknown} [payload]
   * @param {UniqueOptions} [options]
   * @returns {Promise<{ id: string, created: boolean }>} `created` false: the key is held
   *   (`id` is its holder's) or a job with this `id` exists
   */
  async enqueueUnique(uniqueKey, type, payload = null, options = {}) {
    const key = checkName("uniqueKey", uniqueKey);
    checkOptionNames(options, UNIQUE_OPTIONS);
    const { ttlMs = DEFAULT_UNIQUE_TTL_MS, delayMs, holdForTtl = false, group, after, ...jobOptions } =
      /** @type {UniqueOptions & { after?: unknown }} */ (options);
    if (after !== undefined) throw new InvalidJobError("after", NO_KEY_AFTER);
    if (typeof holdForTtl !== "boolean") throw new InvalidJobError("holdForTtl", "true or false", holdForTtl);
    const unique = { key, ttlMs: checkPositiveMs("ttlMs", ttlMs), holdForTtl };
    const delay = delayMs === undefined ? undefined : checkDelayMs("delayMs", delayMs);
    const jobGroup = groupOf(group);
    const job = this.#prepare(type, payload, jobOptions, JOB_OPTIONS);
    const { id, outcome } = await this.#enqueueScripted({
      ...job,
      id: job.id ?? randomUUID(),
      unique,
      delayMs: delay,
      group: jobGroup,
    });
    return { id, created: outcome === "created" };
  }

  /**
   * Enqueues a job that runs `delayMs` after the last enqueue of `debounceKey`, once for a
   * burst: while a job of this key waits for its first run, this one is folded into it
   * (its payload and options win, the waiting job's id stays), and it runs no later than
   * `maxDelayMs` after the burst's first enqueue.
   * With `group` (see `enqueue`), once its time comes the job waits its group's turn as a
   * new one does. A job folded into the waiting one brings its group (or none), as it
   * brings its payload. A debounced job waits for no other job: `after` is refused
   * (InvalidJobError).
   * @param {string} debounceKey
   * @param {string} type
   * @param {unknown} [payload]
   * @param {DebounceOptions} [options]
   * @returns {Promise<{ id: string, folded: boolean }>} `folded`: `id` is the waiting job's
   */
  async enqueueDebounced(debounceKey, type, payload = null, options = /** @type {DebounceOptions} */ ({ delayMs: 0 })) {
    const key = checkName("debounceKey", debounceKey);
    checkOptionNames(options, DEBOUNCE_OPTIONS);
    const { delayMs, maxDelayMs, group, after, ...jobOptions } = /** @type {DebounceOptions & { after?: unknown }} */ (
      options
    );
    if (after !== undefined) throw new InvalidJobError("after", NO_KEY_AFTER);
    const debounce = {
      key,
      delayMs: checkPositiveMs("delayMs", delayMs),
      maxMs: maxDelayMs === undefined ? 0 : checkPositiveMs("maxDelayMs", maxDelayMs),
    };
    const job = this.#prepare(type, payload, jobOptions, JOB_OPTIONS);
    const { id, outcome } = await this.#enqueueScripted({
      ...job,
      id: job.id ?? randomUUID(),
      debounce,
      group: groupOf(group),
    });
    return { id, folded: outcome === "debounced" };
  }

  /**
   * The job's status, or null when it is nowhere (never enqueued, or trimmed by retention).
   * `id` is the job's id within its queue or its full id (`<queue>:<entry id>`, see
   * `fullId`). A full id names its queue, so `queue` may be left out; given, it must be
   * that queue (or the queue that partition belongs to), else the job is not in it and the
   * answer is null. Left out with any other id, `queue` is "default".
   * A job waiting for its parents (see `enqueue`'s `after`) is `waiting`, with the type,
   * payload and options it was given.
   * @param {string} id
   * @param {StatusOptions} [options]
   * @returns {Promise<import("./views.js").JobStatus | null>}
   */
  async status(id, options = {}) {
    checkOptionNames(options, ["queue"]);
    const where = locate(id, options.queue);
    return where === null ? null : this.#find(where.queue, where.id);
  }

  /**
   * What a job that waits (or waited) for other jobs waits for, from its `deps` hash
   * (protocol 2.19): how many parents it has (`edges`) and still waits for (`left`, null
   * once it was let go), and each parent with its policy, how it ended (`outcome`, null
   * while it has not) and its result (parsed JSON) when it completed with one; `blocked`
   * for one that died under a `wait` edge. Null when the job never had parents, was
   * cancelled while it waited, or was let go over a week ago (the hash is kept that long
   * for its handler to read). `id` and `queue` are as `status` takes them.
   * @param {string} id
   * @param {StatusOptions} [options]
   * @returns {Promise<import("./dependencies.js").Dependencies | null>}
   */
  async dependencies(id, options = {}) {
    checkOptionNames(options, ["queue"]);
    const where = locate(id, options.queue);
    if (where === null) return null;
    for (const partition of await this.#placement.candidates(where.queue, where.id)) {
      const found = await findDependencies(this.#redis, this.#keys, partition, where.id);
      if (found !== null) return found;
    }
    return null;
  }

  /**
   * Creates a flow (protocol 2.19): jobs that wait for other jobs, their parents, in one
   * script call. Each job (`{ type, payload, id, queue, after, ...options }`, with
   * `delayMs` or `runAt`) names its parents in `after`: jobs of this flow (by id, in any
   * order) or jobs enqueued before, in any queue, each with what the job does if that
   * parent ends without completing (`cancel`, the default; `run`; `wait`). Everything is
   * checked first, then written, so the whole flow exists or none of it does: a cycle, a
   * parent not known, a parent already ended under `cancel`, an id twice or taken, or a
   * job the enqueue script would refuse throw InvalidJobError with the script's reason,
   * and nothing is written.
   *
   * Resolves to each job, in order: its id (a random UUID unless given), the queue (or
   * partition) it is in, and `created` (it waits for nothing still running, so it was
   * enqueued at once) or `waiting` (reported `waiting` by `status` until its last parent is
   * done; then it is enqueued as it would have been then, its delay or time counting from
   * that moment). A flow is let in whatever its queues' length caps. On a queue split into
   * partitions each job goes to the partition its group (else its id) names, and its
   * children name that partition. The flow's jobs are listed under `flowId` (a random UUID
   * when left out) in its first job's queue for a week, for `flotilla flows show`; a flow
   * id already listed there is refused.
   * @param {FlowJob[]} jobs
   * @param {FlowOptions} [options]
   * @returns {Promise<Enqueued[]>}
   */
  async enqueueFlow(jobs, options = {}) {
    if (!Array.isArray(jobs)) throw new InvalidJobError("jobs", "an array of jobs", jobs);
    checkOptionNames(options, FLOW_OPTIONS);
    const flowId = options.flowId === undefined ? randomUUID() : checkName("flowId", options.flowId);
    if (jobs.length === 0) return [];
    const given = jobs.map((described) => {
      if (described === null || typeof described !== "object") {
        throw new InvalidJobError("jobs", "an array of jobs: { type, payload, id, queue, after, ... }", described);
      }
      if ("uniqueKey" in described || "debounceKey" in described) throw new InvalidJobError("after", NO_KEY_AFTER);
      checkOptionNames(described, FLOW_JOB_OPTIONS);
      const { type, payload = null, group, after, delayMs, runAt, ...jobOptions } = described;
      if (delayMs !== undefined && runAt !== undefined) {
        throw new InvalidJobError("runAt", "not together with delayMs: give one or the other");
      }
      const job = this.#prepare(type, payload, jobOptions, JOB_OPTIONS);
      return {
        job: {
          ...job,
          id: job.id ?? randomUUID(),
          group: groupOf(group),
          delayMs: delayMs === undefined ? undefined : checkDelayMs("delayMs", delayMs),
          runAtMs: runAt === undefined ? undefined : toRunAtMs(runAt),
        },
        after,
      };
    });
    // The partition each job goes to, by the queue it was given and its id: its children
    // in the flow name it by those.
    /** @type {Map<string, string>} */
    const placed = new Map();
    /** @type {Map<string, Set<string>>} */
    const queuesOf = new Map();
    for (const { job } of given) {
      placed.set(reference(job.queue, job.id), await this.#placement.place(job.queue, job.group ?? job.id));
      queuesOf.set(job.id, (queuesOf.get(job.id) ?? new Set()).add(job.queue));
    }
    const items = [];
    for (const { job, after } of given) {
      const parents = [];
      for (const parent of parentsOf(after ?? [], queuesOf)) parents.push(await this.#parentPartition(parent, placed));
      items.push({ job: { ...job, queue: /** @type {string} */ (placed.get(reference(job.queue, job.id))) }, parents });
    }
    return this.#runFlow(items, flowId, "flow");
  }

  /**
   * Creates batch `batchId` (a name, unique in its queue, where its counts live; protocol
   * 2.19): its jobs, whose ends it counts, and up to three callbacks, each a job enqueued
   * once when its condition holds: `onSuccess` once every job completed, `onComplete` once
   * every job ended however, `onDeath` at the first job that ends without completing. Until
   * then a callback is `waiting`; it is cancelled once its condition can no longer hold. The
   * batch is sealed (no job may be added) unless `keepOpen`: then add jobs with `addToBatch`
   * and seal it with `sealBatch`; its `success` and `complete` callbacks wait for the seal.
   *
   * Jobs and callbacks are `{ type, payload, id, queue, ...options }`, with `delayMs` or
   * `runAt`: a job without an id gets a random UUID, a callback without one
   * `<batch id>.on_<kind>`; one without a queue goes to the batch's. A job of a batch holds no
   * unique or debounce key and waits for no other job. Up to 20 000 jobs go in one script
   * call, checked whole before anything is written; more are sent in several calls (the
   * batch opened unsealed with the first 20 000, sealed by the last), so a process that stops
   * between them leaves the batch open. A batch id in use, an id twice or taken, or a job the
   * enqueue script would refuse throw InvalidJobError with the script's reason. Resolves to
   * the batch's counts.
   * @param {string} batchId
   * @param {BatchJob[]} jobs
   * @param {BatchOptions} [options]
   * @returns {Promise<import("./batches.js").BatchCounts>}
   */
  async enqueueBatch(batchId, jobs, options = {}) {
    checkOptionNames(options, BATCH_OPTIONS);
    const name = checkName("batchId", batchId);
    const queue = checkName("queue", options.queue ?? DEFAULT_QUEUE);
    const members = await this.#batchMembers(jobs, queue);
    /** @type {import("./batches.js").BatchCall["callbacks"]} */
    const callbacks = [];
    for (const [option, kind] of CALLBACK_OPTIONS) {
      const given = options[option];
      if (given !== undefined) {
        callbacks.push({ kind, job: await this.#batchMember(given, queue, option, `${name}.on_${kind}`) });
      }
    }
    const chunks = batchChunks(members);
    /** @type {import("./batches.js").BatchCall[]} */
    const calls = chunks.map((chunk, n) => ({
      mode: n === 0 ? "open" : "add",
      seal: options.keepOpen !== true && n === chunks.length - 1,
      callbacks: n === 0 ? callbacks : [],
      jobs: chunk,
    }));
    return this.#runBatch(name, queue, calls, callbacks.map(({ job }) => job));
  }

  /**
   * Adds jobs (as `enqueueBatch` takes them) to the open batch `batchId`, sealing it after
   * them when `seal`. More than 20 000 jobs are sent in several calls, the last sealing. A
   * batch not known or sealed, an id twice or taken, or a job the enqueue script would refuse
   * throw InvalidJobError with the script's reason. Resolves to the batch's counts.
   * @param {string} batchId
   * @param {BatchJob[]} jobs
   * @param {AddToBatchOptions} [options]
   * @returns {Promise<import("./batches.js").BatchCounts>}
   */
  async addToBatch(batchId, jobs, options = {}) {
    checkOptionNames(options, ADD_TO_BATCH_OPTIONS);
    const name = checkName("batchId", batchId);
    const queue = checkName("queue", options.queue ?? DEFAULT_QUEUE);
    const chunks = batchChunks(await this.#batchMembers(jobs, queue));
    /** @type {import("./batches.js").BatchCall[]} */
    const calls = chunks.map((chunk, n) => ({
      mode: "add",
      seal: options.seal === true && n === chunks.length - 1,
      callbacks: [],
      jobs: chunk,
    }));
    return this.#runBatch(name, queue, calls, []);
  }

  /**
   * Seals the open batch `batchId`: no job may be added from now on, and its `success` and
   * `complete` callbacks fire once its jobs have ended (at once when they all have). Sealing
   * a sealed batch changes nothing. A batch not known throws InvalidJobError. Resolves to
   * the batch's counts.
   * @param {string} batchId
   * @param {BatchQueueOptions} [options]
   * @returns {Promise<import("./batches.js").BatchCounts>}
   */
  async sealBatch(batchId, options = {}) {
    checkOptionNames(options, ["queue"]);
    const name = checkName("batchId", batchId);
    const queue = checkName("queue", options.queue ?? DEFAULT_QUEUE);
    return this.#runBatch(name, queue, [{ mode: "seal", seal: true, callbacks: [], jobs: [] }], []);
  }

  /**
   * Batch `batchId` as it stands (`HGETALL` of its hash): its counts, whether it is sealed,
   * when it was created and finished, its callbacks (each `fired`, `dropped` or null while
   * undecided) and its dead jobs. Null when there is none: never opened, or forgotten a week
   * after it finished.
   * @param {string} batchId
   * @param {BatchQueueOptions} [options]
   * @returns {Promise<import("./batches.js").Batch | null>}
   */
  async batch(batchId, options = {}) {
    checkOptionNames(options, ["queue"]);
    const name = checkName("batchId", batchId);
    const queue = checkName("queue", options.queue ?? DEFAULT_QUEUE);
    return parseBatch(name, queue, await this.#redis.hgetall(this.#keys.batch(queue, name)));
  }

  /**
   * Waits until the job is completed, dead, cancelled or expired, and returns that status:
   * a job that is `waiting` (for its parents), `scheduled`, or `failed` with a retry due,
   * is waited for. `id` and `queue` are as `status` takes them: a full id may stand
   * without its queue.
   * @param {string} id
   * @param {WaitOptions} [options]
   * @returns {Promise<import("./views.js").JobStatus>}
   * @throws {import("./errors.js").WaitTimeoutError} naming the last status seen
   */
  async wait(id, options = {}) {
    checkOptionNames(options, ["queue", "timeoutMs", "pollMs"]);
    const { queue, timeoutMs = DEFAULT_WAIT_TIMEOUT_MS, pollMs = DEFAULT_POLL_MS } = options;
    const where = locate(id, queue);
    return waitUntilTerminal(async () => (where === null ? null : this.#find(where.queue, where.id)), id, {
      timeoutMs,
      pollMs,
    });
  }

  /**
   * The job in whichever partition of `queue` holds it, the one its id names first.
   * @param {string} queue
   * @param {string} id
   */
  async #find(queue, id) {
    for (const partition of await this.#placement.candidates(queue, id)) {
      const found = await findJob(this.#redis, this.#keys, partition, id);
      if (found !== null) return found;
    }
    return null;
  }

  /**
   * Checks a job's arguments and options; returns them in the form written.
   * @param {unknown} type
   * @param {unknown} payload
   * @param {JobOptions} options
   * @param {readonly string[]} known
   * @returns {PreparedJob}
   */
  #prepare(type, payload, options, known) {
    checkOptionNames(options, known);
    return {
      queue: checkName("queue", options.queue ?? DEFAULT_QUEUE),
      type: checkName("type", type),
      payload: encodePayload(payload, this.#maxPayloadBytes),
      id: options.id === undefined ? undefined : checkJobId(options.id),
      maxAttempts: options.maxAttempts === undefined ? undefined : checkMaxAttempts(options.maxAttempts),
      timeoutMs: options.timeoutMs === undefined ? undefined : checkTimeoutMs(options.timeoutMs),
      backoff: options.backoff === undefined ? undefined : checkBackoff(options.backoff),
      // On this process's clock: the protocol takes an expiry as a time, not a duration, on
      // the fast path and through the script alike, so nothing on the server's side can
      // count it from the enqueue.
      expiresAtMs: toExpiresAtMs(options.expiresInMs, options.expiresAtMs, Date.now()),
    };
  }

  /**
   * A job that waits for jobs enqueued before: a flow of one.
   * @param {PreparedJob & { group?: string, delayMs?: number, runAtMs?: number }} prepared
   * @param {unknown} after
   * @returns {Promise<string>} the job id
   */
  async #enqueueAfter(prepared, after) {
    const parents = [];
    for (const parent of parentsOf(after, new Map())) parents.push(await this.#parentPartition(parent, new Map()));
    const id = prepared.id ?? randomUUID();
    const queue = await this.#placement.place(prepared.queue, prepared.group ?? id);
    const [created] = await this.#runFlow([{ job: { ...prepared, id, queue }, parents }], UNNAMED, "after");
    return created.id;
  }

  /**
   * Runs the flow script, the queues named first among the known ones.
   * @param {import("./flows.js").FlowItem[]} items
   * @param {string} flowId
   * @param {string} refusedField
   * @returns {Promise<Enqueued[]>}
   */
  async #runFlow(items, flowId, refusedField) {
    // The queues are named first, so tools list them by the time their jobs are there.
    await Promise.all([...new Set(items.map((item) => item.job.queue))].map((queue) => this.#registerQueue(queue)));
    const outcomes = await runEnqueueFlow(this.#redis, this.#keys, items, flowId, refusedField);
    return items.map(({ job }, i) => ({ id: job.id, queue: job.queue, outcome: outcomes[i] }));
  }

  /**
   * The jobs of a batch, checked and placed. Sent in several calls, an id twice is refused
   * before the first.
   * @param {unknown} jobs
   * @param {string} queue the batch's queue
   * @returns {Promise<import("./script.js").ScriptJob[]>}
   */
  async #batchMembers(jobs, queue) {
    if (!Array.isArray(jobs)) throw new InvalidJobError("jobs", "an array of jobs", jobs);
    const members = [];
    for (const job of jobs) members.push(await this.#batchMember(job, queue, "jobs", undefined));
    if (members.length > MAX_CALL_JOBS) {
      const seen = new Set();
      for (const member of members) {
        const ref = reference(member.queue, member.id);
        if (seen.has(ref)) throw new InvalidJobError("jobs", `job id ${member.id} is in the batch twice`);
        seen.add(ref);
      }
    }
    return members;
  }

  /**
   * A job of a batch (or a callback, `defaultId` its id unless given) checked and placed: in
   * its queue (else the batch's), the partition its group (else its id) names.
   * @param {unknown} described
   * @param {string} queue
   * @param {string} field
   * @param {string | undefined} defaultId
   * @returns {Promise<import("./script.js").ScriptJob>}
   */
  async #batchMember(described, queue, field, defaultId) {
    if (described === null || typeof described !== "object" || Array.isArray(described)) {
      throw new InvalidJobError(field, "a job: { type, payload, id, queue, ... }", described);
    }
    if ("after" in described || "uniqueKey" in described || "debounceKey" in described) {
      throw new InvalidJobError("after" in described ? "after" : field, NO_AFTER_IN_BATCH);
    }
    checkOptionNames(described, BATCH_JOB_OPTIONS);
    const { type, payload = null, group, delayMs, runAt, ...jobOptions } = /** @type {BatchJob} */ (described);
    if (delayMs !== undefined && runAt !== undefined) {
      throw new InvalidJobError("runAt", "not together with delayMs: give one or the other");
    }
    const job = this.#prepare(type, payload, { ...jobOptions, queue: jobOptions.queue ?? queue }, JOB_OPTIONS);
    const id = job.id ?? (defaultId === undefined ? randomUUID() : checkJobId(defaultId));
    const jobGroup = groupOf(group);
    return {
      ...job,
      id,
      queue: await this.#placement.place(job.queue, jobGroup ?? id),
      group: jobGroup,
      delayMs: delayMs === undefined ? undefined : checkDelayMs("delayMs", delayMs),
      runAtMs: runAt === undefined ? undefined : toRunAtMs(runAt),
    };
  }

  /**
   * Runs the batch script's calls in turn, the queues named first among the known ones.
   * @param {string} batchId
   * @param {string} queue
   * @param {import("./batches.js").BatchCall[]} calls
   * @param {import("./script.js").ScriptJob[]} callbacks
   * @returns {Promise<import("./batches.js").BatchCounts>}
   */
  async #runBatch(batchId, queue, calls, callbacks) {
    // The queues are named first, so tools list them (and find the batch) by the time its
    // jobs are there.
    const named = new Set([queue, ...callbacks.map((job) => job.queue), ...calls.flatMap((call) => call.jobs.map((job) => job.queue))]);
    await Promise.all([...named].map((name) => this.#registerQueue(name)));
    let counts = await runBatch(this.#redis, this.#keys, queue, batchId, calls[0]);
    for (const call of calls.slice(1)) counts = await runBatch(this.#redis, this.#keys, queue, batchId, call);
    return counts;
  }

  /**
   * The parent named by the partition that holds it: a job of the flow where it was placed,
   * a job enqueued before in the partition of its queue that knows its id.
   * @param {import("./flows.js").FlowParent} parent
   * @param {Map<string, string>} placed
   * @returns {Promise<import("./flows.js").FlowParent>}
   */
  async #parentPartition(parent, placed) {
    const queue = placed.get(reference(parent.queue, parent.id)) ?? (await this.#partitionKnowing(parent.queue, parent.id));
    return { ...parent, queue };
  }

  /**
   * The partition of `queue` that knows job `id` (by its record, its id key or `done_ids`):
   * the queue itself when it has one partition, or is a partition.
   * @param {string} queue
   * @param {string} id
   */
  async #partitionKnowing(queue, id) {
    if (splitPartition(queue)[1] !== 0 || (await this.#placement.count(queue)) <= 1) return queue;
    const candidates = await this.#placement.candidates(queue, id);
    const known = await Promise.all(
      candidates.map(async (partition) => {
        const [exists, done] = await Promise.all([
          this.#redis.exists(this.#keys.job(partition, id), this.#keys.idKey(partition, id)),
          this.#redis.zscore(this.#keys.doneIds(partition), id),
        ]);
        return exists > 0 || done !== null;
      }),
    );
    const at = known.indexOf(true);
    if (at < 0) throw new InvalidJobError("after", `parent ${id} is not known in any partition of queue ${queue}`);
    return candidates[at];
  }

  /**
   * The fast path: the entry carries the job whole, with only the options the job sets;
   * the worker that runs it fills in the rest from its defaults.
   * @param {PreparedJob} job
   * @returns {Promise<string>} the entry id, which is the job id
   */
  async #enqueueFast(job) {
    const fields = ["type", job.type, "payload", job.payload];
    if (job.maxAttempts !== undefined) fields.push("max_attempts", String(job.maxAttempts));
    if (job.timeoutMs !== undefined) fields.push("timeout", String(job.timeoutMs));
    if (job.backoff !== undefined) fields.push("backoff", job.backoff);
    if (job.expiresAtMs !== undefined) fields.push("expires_at", String(job.expiresAtMs));
    const queue = await this.#placement.place(job.queue, undefined);
    if (this.#maxQueueLen !== undefined) await this.#checkDepth(queue, this.#maxQueueLen);
    const [id] = await Promise.all([
      this.#redis.xadd(this.#keys.stream(queue), "*", ...fields),
      this.#registerQueue(queue),
    ]);
    return /** @type {string} */ (id);
  }

  /**
   * Any job but the fast path's: the script writes it at once, as one entry with its id key
   * (a job to run now), its id in `later` with the job in its id key (a delayed job), or
   * as a record (a unique job).
   * @param {import("./script.js").ScriptJob} job
   * @returns {ReturnType<typeof runEnqueue>}
   */
  async #enqueueScripted(job) {
    // Every enqueue of one group, unique key or debounce key (else one id) goes to the same
    // partition, so it meets the group's line and window, the lock, the waiting job, the id
    // key or the record there. A group comes first: a unique or debounced job of a group
    // waits its turn in its group's partition, and its key is unique there.
    const queue = await this.#placement.place(job.queue, job.group ?? job.unique?.key ?? job.debounce?.key ?? job.id);
    const [reply] = await Promise.all([
      runEnqueue(this.#redis, this.#keys, { ...job, queue, maxQueueLen: this.#maxQueueLen }),
      this.#registerQueue(queue),
    ]);
    return reply;
  }

  /**
   * The fast path's side of the queue cap: the depth is read before the XADD, so producers
   * racing may overshoot the cap by a few jobs (the script keeps it exactly).
   * @param {string} queue
   * @param {number} cap
   */
  async #checkDepth(queue, cap) {
    // Jobs waiting for a time are in `delayed` (with a record) or `later` (without); jobs
    // waiting their group's turn are counted in `grouped` (none: 0).
    const [ready, scheduled, later, grouped] = await Promise.all([
      this.#redis.xlen(this.#keys.stream(queue)),
      this.#redis.zcard(this.#keys.delayed(queue)),
      this.#redis.zcard(this.#keys.later(queue)),
      this.#redis.get(this.#keys.grouped(queue)),
    ]);
    const depth = ready + scheduled + later + Math.max(Number(grouped ?? 0) || 0, 0);
    if (depth >= cap) {
      throw new QueueFullError(queue, `QUEUE_FULL queue ${queue} holds ${depth} jobs, its limit is ${cap}`);
    }
  }

  /**
   * Lists the queue among the known ones, for operators' tools. Its key is in another
   * Cluster slot than the queue's, so it cannot be part of the enqueue script; it is sent
   * beside the write, costing no extra round trip.
   * @param {string} queue
   */
  async #registerQueue(queue) {
    await this.#redis.sadd(this.#keys.queues(), queue);
  }
}
