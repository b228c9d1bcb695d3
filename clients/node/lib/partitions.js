// Which partition of its queue a job goes to, by the rule of PROTOCOL.md ("Partitioned
// queues"): by its group, else its unique or debounce key, else its id.

import { InvalidJobError } from "./errors.js";

/** How long a queue's partition count is used before it is read again, in ms. */
export const COUNT_TTL_MS = 10_000;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const MAX_PARTITIONS = 1024;
const encoder = new TextEncoder();

/**
 * FNV-1a, 32 bits, of the key's UTF-8 bytes.
 * @param {string} key
 * @returns {number}
 */
export function fnv1a(key) {
  let hash = FNV_OFFSET;
  for (const byte of encoder.encode(key)) {
    hash = Math.imul(hash ^ byte, FNV_PRIME) >>> 0;
  }
  return hash >>> 0;
}

/**
 * A stored partition count: digits only, 1-1024; anything else reads as 1, as workers read
 * it, so no job goes where no worker reads.
 * @param {unknown} stored
 * @returns {number}
 */
export function parseCount(stored) {
  if (typeof stored !== "string" || !/^[0-9]{1,4}$/u.test(stored)) return 1;
  const count = Number(stored);
  return count >= 1 && count <= MAX_PARTITIONS ? count : 1;
}

/**
 * The partition a group, a key or an id places its job in, of `count`.
 * @param {string} key
 * @param {number} count
 */
export function partitionFor(key, count) {
  return count > 1 ? fnv1a(key) % count : 0;
}

/**
 * Partition 0 is the queue itself; partition k is `<queue>#<k>`.
 * @param {string} queue
 * @param {number} index
 */
export function partitionName(queue, index) {
  return index === 0 ? queue : `${queue}#${index}`;
}

/**
 * The queue a partition belongs to, and its number (0 for the queue's own name).
 * @param {string} name
 * @returns {[string, number]}
 */
export function splitPartition(name) {
  const named = /^(.+)#([1-9][0-9]{0,3})$/u.exec(name);
  if (named === null || Number(named[2]) >= MAX_PARTITIONS) return [name, 0];
  return [named[1], Number(named[2])];
}

/** Partition counts as last read, each for ten seconds. */
export class Placement {
  /** @type {import("ioredis").Redis | import("ioredis").Cluster} */
  #redis;
  /** @type {import("./keys.js").Keys} */
  #keys;
  /** @type {Map<string, { count: number, readAt: number }>} */
  #counts = new Map();

  /**
   * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
   * @param {import("./keys.js").Keys} keys
   */
  constructor(redis, keys) {
    this.#redis = redis;
    this.#keys = keys;
  }

  /**
   * How many partitions `queue` has: 1 unless raised.
   * @param {string} queue
   */
  async count(queue) {
    const now = Date.now();
    const cached = this.#counts.get(queue);
    if (cached !== undefined && now - cached.readAt < COUNT_TTL_MS) return cached.count;
    const count = parseCount(await this.#redis.hget(this.#keys.partitions(), queue));
    this.#counts.set(queue, { count, readAt: now });
    return count;
  }

  /**
   * Whether `queue` names a queue of several partitions (not one partition).
   * @param {string} queue
   */
  async isSplit(queue) {
    return splitPartition(queue)[1] === 0 && (await this.count(queue)) > 1;
  }

  /**
   * The partition of `queue` a job goes to: by `key` (its group, unique or debounce key,
   * or id); a job without one (only a fast-path job, which the client sends to a queue of
   * one partition) stays in the queue itself. A partition's own name stays as it is when
   * the queue has that partition; past the count it is refused, since no worker reads it.
   * @param {string} queue
   * @param {string | undefined} key
   */
  async place(queue, key) {
    const [logical, named] = splitPartition(queue);
    const count = await this.count(logical);
    if (named !== 0) {
      if (named >= count) {
        throw new InvalidJobError(
          "queue",
          `partition ${named} of ${logical}, which has ${count}: no worker would read it`,
          queue,
        );
      }
      return queue;
    }
    if (count <= 1) return queue;
    return partitionName(queue, key === undefined ? 0 : partitionFor(key, count));
  }

  /**
   * Every partition a job of `queue` may be in, the one its id places it in first.
   * @param {string} queue
   * @param {string} id
   */
  async candidates(queue, id) {
    if (splitPartition(queue)[1] !== 0) return [queue];
    const count = await this.count(queue);
    const first = partitionFor(id, count);
    const rest = [...Array(count).keys()].filter((i) => i !== first);
    return [first, ...rest].map((i) => partitionName(queue, i));
  }
}
