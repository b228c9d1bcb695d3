// Jobs that wait for other jobs (protocol 2.19): runs the published flow script (bundled as enqueue_flow.lua), its arguments and replies.
//
// A job may wait for other jobs, its *parents*, to end before it runs. A *flow* of such jobs
// (any graph without cycles: a job may have several parents and several children) is created
// by one call of the script: everything is checked first (every job as the enqueue script
// checks it, every parent known, no cycle, no id twice or taken), then written, so the whole
// flow exists or none of it does. A flow has an id of its own, under which its jobs are
// listed (`flow:<id>` of its first job's queue) for a week, for `flotilla flows show`. A job
// that waits for jobs enqueued before is a flow of one, listed under none.

import { readFileSync } from "node:fs";

import { InvalidJobError } from "./errors.js";
import { allArgs } from "./script.js";

/** The script's text, read once: it must stay byte-identical to protocol/v2/enqueue_flow.lua. */
export const ENQUEUE_FLOW_LUA = readFileSync(new URL("../enqueue_flow.lua", import.meta.url), "utf8");

// The command's name on an ioredis connection. Versioned, so a connection shared with code
// that bundles another revision of the script never runs the wrong one.
const COMMAND = "flotillaEnqueueFlowV2";

/**
 * What a job does if a parent ends without completing (dead, cancelled, expired, deleted):
 * `cancel` (it ends cancelled, unrun: the default), `run` (it runs anyway) or `wait` (it
 * waits until an operator's retry of the dead parent completes).
 */
export const POLICIES = Object.freeze(["cancel", "run", "wait"]);
export const DEFAULT_POLICY = "cancel";

/**
 * ARGV[3], the flow's id: empty lists the flow under none (a job that waits for jobs
 * enqueued before is a flow of one, and is not named).
 */
export const UNNAMED = "";

/** The script's refusals, each with nothing written. */
const REFUSALS = ["BAD_FLOW", "BAD_ARG", "BAD_ID"];

/**
 * @typedef {"cancel" | "run" | "wait"} Policy
 *
 * @typedef {object} FlowParent a parent as the script takes it
 * @property {string} queue the queue or partition that holds it
 * @property {string} id
 * @property {Policy} policy
 *
 * @typedef {object} FlowItem one job of a flow, checked and placed
 * @property {import("./script.js").ScriptJob} job
 * @property {FlowParent[]} parents
 */

/**
 * Makes the script a command of the connection: ioredis sends EVALSHA and falls back to
 * EVAL the first time the server does not have it.
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 */
export function defineEnqueueFlow(redis) {
  if (typeof (/** @type {any} */ (redis)[COMMAND]) !== "function") {
    redis.defineCommand(COMMAND, { lua: ENQUEUE_FLOW_LUA });
  }
}

/**
 * A parent's policy: `cancel`, `run` or `wait`.
 * @param {unknown} value
 * @returns {Policy}
 */
export function checkPolicy(value) {
  if (typeof value !== "string" || !POLICIES.includes(value)) {
    throw new InvalidJobError("after", "a policy of cancel, run or wait", value);
  }
  return /** @type {Policy} */ (value);
}

/**
 * Creates the flow, listed under `flowId` (empty: under none); answers each job's outcome,
 * in order. A refusal throws InvalidJobError naming `refusedField`, with the script's
 * reason (`BAD_FLOW`: a cycle, a parent not known, a parent already ended under `cancel`,
 * an id twice or taken, a flow id taken, too many jobs or edges; `BAD_ARG` or `BAD_ID`: a
 * job the enqueue script would refuse); nothing was written.
 * @param {import("ioredis").Redis | import("ioredis").Cluster} redis
 * @param {import("./keys.js").Keys} keys
 * @param {FlowItem[]} items
 * @param {string} flowId
 * @param {string} refusedField
 * @returns {Promise<("created" | "waiting")[]>}
 */
export async function runEnqueueFlow(redis, keys, items, flowId, refusedField) {
  const args = [keys.namespace, String(items.length), flowId];
  for (const { job, parents } of items) {
    args.push(...allArgs(job), String(parents.length));
    for (const parent of parents) args.push(parent.queue, parent.id, parent.policy);
  }
  let reply;
  try {
    // The call goes where its first job's stream is (a cluster client routes by it). The
    // arguments go as one array, which ioredis flattens: spread, a flow of 20 000 jobs
    // would overflow the call stack.
    reply = await /** @type {any} */ (redis)[COMMAND](1, keys.stream(items[0].job.queue), args);
  } catch (error) {
    if (error instanceof Error && REFUSALS.some((code) => error.message.startsWith(`${code} `))) {
      throw new InvalidJobError(refusedField, error.message);
    }
    throw error;
  }
  if (
    !Array.isArray(reply) ||
    reply.length !== items.length ||
    !reply.every((word) => word === "created" || word === "waiting")
  ) {
    throw new Error(`unexpected reply from the flow script: ${JSON.stringify(reply)}`);
  }
  return /** @type {("created" | "waiting")[]} */ (reply);
}
