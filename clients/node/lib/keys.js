// The Redis key names of one namespace, as PROTOCOL.md lays them out.

/**
 * Every key of a queue carries the hash tag `{<queue>}` so a queue's keys share a Redis
 * Cluster slot (and one script may touch them all); fleet-wide keys share `{global}`.
 */
export class Keys {
  /** @param {string} namespace */
  constructor(namespace) {
    /** @readonly */
    this.namespace = namespace;
  }

  /** @param {string} queue the stream of jobs ready to run */
  stream(queue) {
    return `${this.namespace}:{${queue}}:q`;
  }

  /** @param {string} queue @param {string} id the job's record */
  job(queue, id) {
    return `${this.namespace}:{${queue}}:job:${id}`;
  }

  /**
   * @param {string} queue @param {string} id where a job with an id of its own (or one
   * retried, under its entry id) but no record is: the id of the stream entry carrying it
   * while it waits or runs, or, while it waits in `later`, its state and the entry it
   * becomes (binary), or `waiting` while it waits for its parents (protocol 2.19). Once
   * the job completed the key is gone and `doneIds` remembers the id (a key written by
   * protocol 2.7 holds `done <done entry id>` until it expires)
   */
  idKey(queue, id) {
    return `${this.namespace}:{${queue}}:id:${id}`;
  }

  /** @param {string} queue scheduled jobs and retries, scored by due time */
  delayed(queue) {
    return `${this.namespace}:{${queue}}:delayed`;
  }

  /** @param {string} queue how many jobs wait their group's turn (protocol 2.18): part of the depth */
  grouped(queue) {
    return `${this.namespace}:{${queue}}:grouped`;
  }

  /**
   * @param {string} queue ids of jobs waiting for their time or a retry without a record,
   * scored by due time; each one's id key holds the job
   */
  later(queue) {
    return `${this.namespace}:{${queue}}:later`;
  }

  /** @param {string} queue recent completions */
  done(queue) {
    return `${this.namespace}:{${queue}}:done`;
  }

  /**
   * @param {string} queue ids of jobs that completed without a record (protocol 2.8),
   * scored by when (ms): each one's completion is in `done` at or after that millisecond,
   * so it is found without a search from the job's enqueue
   */
  doneIds(queue) {
    return `${this.namespace}:{${queue}}:done_ids`;
  }

  /**
   * @param {string} queue @param {string} id what a job that waits for other jobs waits for
   * (protocol 2.19): a hash of `left`, `edges`, `blocked`, `type`, `created_at`, `job` (its
   * enqueue arguments, packed), `parents`, `flow`, and per parent that ended `o:<queue> <id>`
   * (how) and `r:<queue> <id>` (its result); kept a week once the job was let go, for its
   * handler to read
   */
  deps(queue, id) {
    return `${this.namespace}:{${queue}}:deps:${id}`;
  }

  /**
   * @param {string} queue ids of the queue's jobs waiting for their parents (protocol 2.19),
   * scored by when they were created
   */
  waiting(queue) {
    return `${this.namespace}:{${queue}}:waiting`;
  }

  /** @param {string} queue @param {string} debounceKey names the job a burst of the key folds into */
  debounce(queue, debounceKey) {
    return `${this.namespace}:{${queue}}:debounce:${debounceKey}`;
  }

  /**
   * @param {string} queue
   * @param {string} batchId
   * A batch's counts, callbacks and dead jobs (protocol 2.19): a hash of `total`, `pending`,
   * `completed`, `dead`, `ended`, `sealed`, `created_at`, `finished_at`, `cb:<kind>` and
   * `done:<kind>` per callback, and `m:<queue> <id>` per dead job
   */
  batch(queue, batchId) {
    return `${this.namespace}:{${queue}}:batch:${batchId}`;
  }

  /** @param {string} queue @param {string} uniqueKey the lock naming the job that holds it */
  unique(queue, uniqueKey) {
    return `${this.namespace}:{${queue}}:unique:${uniqueKey}`;
  }

  /** The set of known queue names, which operators' tools list. */
  queues() {
    return `${this.namespace}:{global}:queues`;
  }

  /** Queue name → its number of partitions, for partitioned queues. */
  partitions() {
    return `${this.namespace}:{global}:partitions`;
  }
}

/** The consumer group every worker reads the streams through. */
export const CONSUMER_GROUP = "workers";
