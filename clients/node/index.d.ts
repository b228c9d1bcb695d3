// Types of the flotilla-client package, written by hand to match index.js.

import type { Cluster, Redis } from "ioredis";

/** A job's state, as PROTOCOL.md's "States" lists them. */
export type StatusName =
  /** Waiting for its parents to end (protocol 2.19): on no stream yet. */
  | "waiting"
  | "scheduled"
  | "pending"
  | "running"
  | "completed"
  | "failed"
  | "dead"
  | "cancelled"
  /** Not started by its `expiresAt` (protocol 2.16): ended without running. */
  | "expired";

/** The states a job stays in without an operator: what `wait` waits for. */
export declare const TERMINAL_STATUSES: readonly ["completed", "dead", "cancelled", "expired"];

export interface ClientOptions {
  /** Prefix of every key. Default "flotilla". */
  namespace?: string;
  /**
   * Largest payload accepted, in bytes of UTF-8 JSON; match the workers'
   * `limits.max_payload_bytes`. Default 524288 (512 KiB).
   */
  maxPayloadBytes?: number;
  /**
   * Cap on each queue's depth (ready plus scheduled jobs): an enqueue beyond it throws
   * QueueFullError. Exact through the script; the fast path reads the depth first, so
   * racing producers may overshoot by a few jobs. No cap by default.
   */
  maxQueueLen?: number;
}

export interface EnqueueOptions {
  /** Default "default". */
  queue?: string;
  /**
   * The job's own id (a UUID is best). The same id twice is one job, run once. It may not
   * have the form `<digits>-<digits>` nor end in `:<digits>-<digits>`: those name the jobs
   * without an id of their own (an entry id, and its full id).
   */
  id?: string;
  /** Attempts before the job is dead: 1 to 10000. Default 3 (or the worker's default on the fast path). */
  maxAttempts?: number;
  /** How long one attempt may run, at least 1 ms. Default 30 minutes. */
  timeoutMs?: number;
  /** `fixed:MS`, `exponential:BASE_MS:CAP_MS` or `list:MS,MS,...`. Default `exponential:1000:600000`. */
  backoff?: string;
  /**
   * Never start the job later than this long from now (by this process's clock), at least
   * 1 ms: not started by then (its queue paused or backed up, its retry due later), it ends
   * as `expired`, unrun; one already running finishes. Default: it never expires.
   */
  expiresInMs?: number;
  /** As `expiresInMs`, at this time: ms since the Unix epoch, at most 32503680000000 (the year 3000). Give one or the other. */
  expiresAtMs?: number;
}

export interface GroupOptions extends EnqueueOptions {
  /**
   * The job's group (a name). Where the queue's limit says `group_concurrency=N`, at most
   * N jobs of a group run at once, and where it says `group_rate=10/s`, at most that many
   * start per interval; the rest wait their turn, reported `pending`. A job with a time
   * or a debounce (`enqueueIn`, `enqueueAt`, `enqueueDebounced`) waits its group's turn
   * once its time comes. A unique job of a group (`enqueueUnique`) holds its key while it
   * waits its turn; with `delayMs` it waits for its time first, then for its turn.
   */
  group?: string;
}

/** What a job does if a parent ends without completing (dead, cancelled, expired, deleted). */
export type Policy = "cancel" | "run" | "wait";

/** A job another job waits for (protocol 2.19). */
export interface ParentObject {
  /**
   * Its queue (or partition). Default "default", or the queue a full id names; in a flow,
   * the queue of the flow's job with this id.
   */
  queue?: string;
  id: string;
  /**
   * `cancel` (the default: the waiting job ends cancelled, unrun), `run` (it runs anyway)
   * or `wait` (it waits until an operator's retry of the dead parent completes).
   */
  policy?: Policy;
}

/**
 * A parent: an object (an `Enqueued` from an earlier flow is one), or an id: of a job of
 * the same flow, else as `status` takes it (a full id names its queue, any other is of
 * "default").
 */
export type Parent = ParentObject | Enqueued | string;

export interface AfterOptions extends GroupOptions {
  /**
   * Jobs enqueued before (protocol 2.19), in any queue, that this one waits for: it waits
   * (reported `waiting`) until each has completed, then is enqueued as it would have been
   * then (a delay counting from that moment). It goes through the flow script, with a
   * random UUID unless `id` is given; an id taken, a parent not known or already ended
   * under `cancel` reject with InvalidJobError, and nothing is written.
   */
  after?: Parent[];
}

/** One job of a flow. */
export interface FlowJob extends AfterOptions {
  type: string;
  /** Anything JSON-serializable. */
  payload?: unknown;
  /** Run this long after its last parent is done. */
  delayMs?: number;
  /** Run no earlier than this (a Date or ms since the Unix epoch), nor before its last parent is done. Give `delayMs` or `runAt`, not both. */
  runAt?: Date | number;
}

export interface FlowOptions {
  /**
   * The flow's id, a name (a random UUID by default): its jobs are listed under it in its
   * first job's queue for a week (`flotilla flows show`); an id already listed there is
   * refused.
   */
  flowId?: string;
}

/** A job of a flow as it was created. */
export interface Enqueued {
  id: string;
  /** The queue (or partition) it is in. */
  queue: string;
  /** `created`: it waits for nothing still running, so it was enqueued at once; `waiting`: for its parents. */
  outcome: "created" | "waiting";
}

/** One job of a batch, or one of its callbacks (protocol 2.19). */
export interface BatchJob extends GroupOptions {
  type: string;
  /** Anything JSON-serializable. */
  payload?: unknown;
  /** Run this long after its enqueue (a callback's: after it fires). */
  delayMs?: number;
  /** Run no earlier than this (a Date or ms since the Unix epoch). Give `delayMs` or `runAt`, not both. */
  runAt?: Date | number;
  /** A job of a batch waits for no other job: given, it is refused (InvalidJobError). */
  after?: never;
}

/** A batch callback's kind: `success`, `complete` or `death`. */
export type CallbackKind = "success" | "complete" | "death";

export interface BatchOptions {
  /** Where the batch's counts live (default "default"), and the queue of its jobs and callbacks that name none. */
  queue?: string;
  /** Enqueued once every job of the sealed batch completed (its id `<batch id>.on_success` unless given). */
  onSuccess?: BatchJob;
  /** Enqueued once every job of the sealed batch ended, however (its id `<batch id>.on_complete` unless given). */
  onComplete?: BatchJob;
  /** Enqueued at the first job that ends without completing (its id `<batch id>.on_death` unless given). */
  onDeath?: BatchJob;
  /** Leave it open: add jobs with `addToBatch`, then `sealBatch`; its `success` and `complete` callbacks wait for the seal. */
  keepOpen?: boolean;
}

export interface BatchQueueOptions {
  /** The batch's queue (default "default"). */
  queue?: string;
}

export interface AddToBatchOptions {
  /** The batch's queue (default "default"), and the queue of its jobs that name none. */
  queue?: string;
  /** Seal the batch after these jobs. */
  seal?: boolean;
}

/** A batch's counts, as the batch script answers them after a call. */
export interface BatchCounts {
  total: number;
  /** Jobs not yet ended. */
  pending: number;
  completed: number;
  /** Dead, and so still able to complete after an operator's retry. */
  dead: number;
  /** Cancelled, expired or deleted: over for good. */
  ended: number;
  /** No job may be added. */
  sealed: boolean;
}

/** One of a batch's callbacks. */
export interface BatchCallback {
  kind: CallbackKind;
  /** The queue (or partition) of the job enqueued when it fires. */
  queue: string;
  id: string;
  /** `fired`, `dropped` (cancelled: its condition can no longer hold), or null while undecided. */
  decided: "fired" | "dropped" | null;
}

/** A job of a batch. */
export interface BatchMember {
  queue: string;
  id: string;
}

/** A batch as its hash says it stands. */
export interface Batch extends BatchCounts {
  id: string;
  queue: string;
  /** When it was opened, ms since the Unix epoch. */
  createdAt: number | null;
  /** When every job of the sealed batch had ended, ms since the Unix epoch; null until then. */
  finishedAt: number | null;
  callbacks: BatchCallback[];
  /** Its dead jobs (each may still complete after an operator's retry). */
  deadJobs: BatchMember[];
}

/** One parent of a job, as the job's `deps` hash says it stands. */
export interface ParentState {
  /** Its queue (or partition). */
  queue: string;
  id: string;
  /** The edge's policy; null where the hash does not say. */
  policy: Policy | null;
  /** How it ended (`completed`, `dead`, `cancelled`, `expired`, `deleted`); null while it has not. */
  outcome: string | null;
  /** Its result (parsed JSON) when it completed with one, else null. */
  result: unknown;
  /** It died, and the job waits for an operator's retry of it (a `wait` edge). */
  blocked: boolean;
}

/** What a job waits or waited for (protocol 2.19). */
export interface Dependencies {
  /** How many parents it has. */
  edges: number;
  /** How many it still waits for; null once it was let go. */
  left: number | null;
  /** Whether it still waits for its parents. */
  waiting: boolean;
  /** How many of its parents died under a `wait` edge. */
  blocked: number;
  /** Each parent, in the order given, with its policy and how it ended. */
  parents: ParentState[];
  /** When it was let go (ms since the Unix epoch), once it was. */
  releasedAt: number | null;
  /** The named flow it was created in. */
  flowId: string | null;
  /** The queue (its flow's first job's) that lists that flow's jobs. */
  flowQueue: string | null;
}

export interface UniqueOptions extends GroupOptions {
  /** Refused: a unique job waits for no other job. */
  after?: never;
  /** How long the key is held at most; unless `holdForTtl`, it is released earlier when the job completes, is cancelled or expires. Default 3600000 (an hour). */
  ttlMs?: number;
  /** Run this long from now, on the Redis server's clock. With `group`, the job then waits its group's turn, holding its key. */
  delayMs?: number;
  /** Keep the key for the whole TTL, even after the job finishes. Default false. */
  holdForTtl?: boolean;
}

export interface DebounceOptions extends GroupOptions {
  /** Refused: a debounced job waits for no other job. */
  after?: never;
  /** Run this long after the last enqueue of the key. */
  delayMs: number;
  /** Run no later than this long after the burst's first enqueue. Default: no bound. */
  maxDelayMs?: number;
}

export interface StatusOptions {
  /**
   * Default "default", or the queue a full id (`<queue>:<entry id>`) names. Given with a
   * full id, it must be that queue (or the queue that partition belongs to), else the job
   * is not found.
   */
  queue?: string;
}

export interface WaitOptions extends StatusOptions {
  /** Give up after this long. Default 30000. */
  timeoutMs?: number;
  /** Between status reads. Default 50. */
  pollMs?: number;
}

/** One attempt that ended in an error. */
export interface AttemptError {
  /** Which attempt, counting from 1. */
  attempt: number;
  /** When it ended, ms since the Unix epoch. */
  at: number;
  error: string;
}

export interface JobStatus {
  id: string;
  queue: string;
  status: StatusName;
  type: string | null;
  /** Attempts started so far. */
  attempts: number;
  /** null when the job leaves it to its worker's default (a fast-path job that sets none). */
  maxAttempts: number | null;
  /** The handler's result (parsed JSON); null until completed. */
  result: unknown;
  /** The last error. */
  error: string | null;
  /** Each failed attempt's error, oldest first (the last 10). */
  errors: AttemptError[];
  /** Parsed JSON; a Buffer for another content type; null when not kept (a completion keeps no payload). */
  payload: unknown;
  /** When the job became (or becomes) due, ms since the Unix epoch; null where not kept (a completion; a retry waiting without a record, which has `nextRunAt`). */
  runAt: number | null;
  /** When a `failed` job's retry is due, ms since the Unix epoch; null in any other state. */
  nextRunAt: number | null;
  /** When the job may no longer start, ms since the Unix epoch, where its record, entry or waiting entry says so; null when it never expires, or nothing kept says (a completion). */
  expiresAt: number | null;
  /** The job's group (protocol 2.17), where its record, entry or waiting entry says so; null for a job of no group, or where nothing kept says (a completion). */
  group: string | null;
}

export declare class Client {
  /** The client defines its enqueue command on `redis`. */
  constructor(redis: Redis | Cluster, options?: ClientOptions);
  /** A client with a connection of its own to `url` (`redis://host:port/db`). */
  static fromUrl(url: string, options?: ClientOptions): Client;
  /** Closes the connection (the one passed in, too). */
  quit(): Promise<void>;

  /**
   * Enqueues a job to run now; returns its id within its queue. Without `id`, the fast path
   * (one XADD; the entry id is the job id, unique within the queue only: `fullId(queue, id)`
   * names the job anywhere).
   */
  enqueue(type: string, payload?: unknown, options?: AfterOptions): Promise<string>;
  /** Enqueues a job to run `delayMs` from now, on the Redis server's clock; with `group`, it then waits its group's turn; with `after`, the delay counts from when its last parent is done. */
  enqueueIn(delayMs: number, type: string, payload?: unknown, options?: AfterOptions): Promise<string>;
  /** Enqueues a job to run no earlier than `when` (a Date or ms since the Unix epoch); a past time runs now. With `group`, it then waits its group's turn; with `after`, it runs no earlier than its last parent is done. */
  enqueueAt(when: Date | number, type: string, payload?: unknown, options?: AfterOptions): Promise<string>;
  /** Enqueues a job unless another holds `uniqueKey` in its queue; then `created` is false and `id` is the holder's. With `group`, it holds the key while it waits its group's turn; with `delayMs` it waits for its time first, then for its turn. */
  enqueueUnique(
    uniqueKey: string,
    type: string,
    payload?: unknown,
    options?: UniqueOptions,
  ): Promise<{ id: string; created: boolean }>;
  /** Enqueues a job that runs `delayMs` after the last enqueue of `debounceKey`, once per burst; `folded` true: it was folded into the waiting job whose id this is (its payload and group win). */
  enqueueDebounced(
    debounceKey: string,
    type: string,
    payload: unknown,
    options: DebounceOptions,
  ): Promise<{ id: string; folded: boolean }>;

  /**
   * The job's status, or null when it is nowhere (never enqueued, or trimmed by retention).
   * `id` is the job's id within its queue or its full id.
   */
  status(id: string, options?: StatusOptions): Promise<JobStatus | null>;
  /** Resolves once the job is completed, dead, cancelled or expired (a `waiting`, `scheduled` or `failed` job is waited for); rejects with WaitTimeoutError after `timeoutMs`. */
  wait(id: string, options?: WaitOptions): Promise<JobStatus>;

  /**
   * Creates a flow (protocol 2.19): jobs that wait for other jobs (of the flow, by id, or
   * enqueued before), in one script call; all of it or nothing. A cycle, a parent not
   * known or already ended under `cancel`, an id twice or taken, or a bad job rejects with
   * InvalidJobError carrying the script's reason (`BAD_FLOW …`, `BAD_ARG …`, `BAD_ID …`).
   * Resolves to each job, in order: its id (a random UUID unless given), its queue (or
   * partition) and whether it was `created` or is `waiting`.
   */
  enqueueFlow(jobs: FlowJob[], options?: FlowOptions): Promise<Enqueued[]>;
  /**
   * What a job that waits (or waited) for other jobs waits for, from its `deps` hash; null
   * when it never had parents, was cancelled while it waited, or was let go over a week
   * ago. `id` is the job's id within its queue or its full id.
   */
  dependencies(id: string, options?: StatusOptions): Promise<Dependencies | null>;

  /**
   * Creates a batch (protocol 2.19): jobs whose ends are counted, with up to three
   * callbacks enqueued once each when their condition holds; sealed unless `keepOpen`. Up
   * to 20 000 jobs go in one call, more in several (opened unsealed, the last call sealing).
   * A batch id in use, an id twice or taken, or a bad job rejects with InvalidJobError
   * carrying the script's reason (`BAD_BATCH …`, `BAD_ARG …`, `BAD_ID …`), nothing written.
   */
  enqueueBatch(batchId: string, jobs: BatchJob[], options?: BatchOptions): Promise<BatchCounts>;
  /** Adds jobs to the open batch, sealing it after them with `seal`; a batch not known or sealed rejects with InvalidJobError. */
  addToBatch(batchId: string, jobs: BatchJob[], options?: AddToBatchOptions): Promise<BatchCounts>;
  /** Seals the open batch: no job may be added, and its `success` and `complete` callbacks fire once its jobs have ended. Sealing a sealed batch changes nothing. */
  sealBatch(batchId: string, options?: BatchQueueOptions): Promise<BatchCounts>;
  /** The batch as it stands, from its hash; null when there is none (never opened, or forgotten a week after it finished). */
  batch(batchId: string, options?: BatchQueueOptions): Promise<Batch | null>;
}

/**
 * The full id of job `id` of `queue` (or partition): `<queue>:<id>` when `id` is a stream
 * entry id (a job without an id of its own), else `id` itself.
 */
export declare function fullId(queue: string, id: string): string;

/**
 * Reads a job id: a full id (`<queue>:<entry id>`, split at the last `:`, the queue not
 * empty) gives its queue and entry id; anything else gives `{ queue: null, id }`.
 */
export declare function parseFullId(value: string): { queue: string | null; id: string };

export declare class FlotillaError extends Error {}

/** A job or option the protocol refuses, caught before anything is written. */
export declare class InvalidJobError extends FlotillaError {
  constructor(field: string, reason: string, value?: unknown);
  /** The argument or option at fault: "type", "queue", "id", "uniqueKey", "payload", "maxAttempts", "expiresInMs", … */
  readonly field: string;
}

/** The queue is at its length cap. */
export declare class QueueFullError extends FlotillaError {
  constructor(queue: string, detail: string);
  readonly queue: string;
}

/** `wait` ran out of time. */
export declare class WaitTimeoutError extends FlotillaError {
  constructor(id: string, timeoutMs: number, lastStatus: string | null);
  readonly id: string;
  /** The status last seen; null when the job was not found. */
  readonly lastStatus: string | null;
}
