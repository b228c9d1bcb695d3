// What a job waits (or waited) for (protocol 2.19), read from its `deps` hash.
//
// The hash `<ns>:{<queue>}:deps:<id>` holds `edges` (how many parents the job has), `parents`
// (each one, `<policy> <queue> <id>` a line), `flow` (`<queue> <flow id>`, when its flow was
// named), while it waits `left` (parents still to wait for) and `blocked` (parents that died
// under a `wait` edge), `type`, `created_at`, `job` (its enqueue arguments, packed), and, per
// parent that ended, `o:<queue> <id>` (how: `completed`, `dead`, `cancelled`, `expired`,
// `deleted`) with `r:<queue> <id>` (its result, JSON text, when it completed with one); a
// parent that died under `wait` is `b:<queue> <id>` while the job waits for an operator's
// retry of it. Once the job was let go, `left`, `blocked` and `job` go, `released_at` says
// when, and the hash is kept a week for the job's handler to read.

/**
 * @typedef {object} ParentState one parent of a job, as the job's `deps` hash says it stands
 * @property {string} queue its queue (or partition)
 * @property {string} id
 * @property {string | null} policy what the job does if it ends without completing
 *   (`cancel`, `run`, `wait`); null where the hash does not say
 * @property {string | null} outcome how it ended (`completed`, `dead`, `cancelled`,
 *   `expired`, `deleted`); null while it has not
 * @property {unknown} result its result (parsed JSON) when it completed with one, else null
 * @property {boolean} blocked it died, and the job waits for an operator's retry of it (a
 *   `wait` edge)
 *
 * @typedef {object} Dependencies what a job waits or waited for
 * @property {number} edges how many parents it has
 * @property {number | null} left how many it still waits for; null once it was let go
 * @property {boolean} waiting whether it still waits for its parents
 * @property {number} blocked how many of its parents died under a `wait` edge
 * @property {ParentState[]} parents each parent, in the order given, with its policy and how
 *   it ended, then any other parent the hash names (one written without its list of
 *   parents names only those that ended, or block the job)
 * @property {number | null} releasedAt when it was let go (ms since the Unix epoch), once it
 *   was
 * @property {string | null} flowId the named flow it was created in
 * @property {string | null} flowQueue the queue (its flow's first job's) that lists that
 *   flow's jobs
 */

/**
 * A `deps` hash as HGETALL answers it (Buffers or strings); null for an empty one: the job
 * never had parents, was cancelled while it waited, or was let go over a week ago.
 * @param {Record<string, Buffer | string>} reply
 * @returns {Dependencies | null}
 */
export function parseDependencies(reply) {
  /** @type {Map<string, string>} */
  const fields = new Map(Object.entries(reply).map(([name, value]) => [name, value.toString()]));
  if (fields.size === 0) return null;
  /** @type {Map<string, { queue: string, id: string, policy?: string, outcome?: string, blockedBy?: string, result?: unknown, blocked?: boolean }>} */
  const parents = new Map();
  /** @param {string} reference `<queue> <id>` */
  const parentOf = (reference) => {
    const space = reference.indexOf(" ");
    if (space < 0) return null;
    let parent = parents.get(reference);
    if (parent === undefined) {
      parent = { queue: reference.slice(0, space), id: reference.slice(space + 1) };
      parents.set(reference, parent);
    }
    return parent;
  };
  // The parents in the order they were given, each with its policy.
  for (const line of (fields.get("parents") ?? "").split("\n")) {
    const space = line.indexOf(" ");
    const parent = space < 0 ? null : parentOf(line.slice(space + 1));
    if (parent !== null) parent.policy = line.slice(0, space);
  }
  for (const [name, value] of fields) {
    const kind = name.slice(0, 2);
    if (kind !== "o:" && kind !== "r:" && kind !== "b:") continue;
    const parent = parentOf(name.slice(2));
    if (parent === null) continue;
    if (kind === "o:") parent.outcome = value;
    else if (kind === "r:") parent.result = json(value);
    else {
      parent.blocked = true;
      parent.blockedBy = value;
    }
  }
  // Those the list names first, as given; any other after them, by queue and id.
  const listed = [...parents.values()].filter((p) => p.policy !== undefined);
  const others = [...parents.values()]
    .filter((p) => p.policy === undefined)
    .sort((a, b) => (a.queue === b.queue ? compare(a.id, b.id) : compare(a.queue, b.queue)));
  const left = fields.has("left") ? Math.max(count(fields.get("left")) ?? 0, 0) : null;
  const flow = fields.get("flow") ?? "";
  const flowSpace = flow.indexOf(" ");
  return {
    edges: Math.max(count(fields.get("edges")) ?? 0, 0),
    left,
    waiting: left !== null,
    blocked: Math.max(count(fields.get("blocked")) ?? 0, 0),
    parents: [...listed, ...others].map((p) => ({
      queue: p.queue,
      id: p.id,
      policy: p.policy ?? null,
      // A blocking parent has not completed: how it ended is what blocks.
      outcome: p.outcome ?? p.blockedBy ?? null,
      result: p.result ?? null,
      blocked: p.blocked ?? false,
    })),
    releasedAt: count(fields.get("released_at")),
    flowId: flowSpace < 0 ? null : flow.slice(flowSpace + 1),
    flowQueue: flowSpace < 0 ? null : flow.slice(0, flowSpace),
  };
}

/** @param {string} a @param {string} b */
function compare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** @param {string | undefined} value @returns {number | null} */
function count(value) {
  if (value === undefined || value === "") return null;
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * JSON text as a value; text that is not JSON is returned as it is.
 * @param {string} value
 * @returns {unknown}
 */
function json(value) {
  if (value === "") return null;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}
