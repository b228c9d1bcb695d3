// Jobs that wait for other jobs (protocol 2.19): the arguments passed to the published flow script, the parents named, what is refused, and how a waiting job and its dependencies read; no Redis needed.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Client, InvalidJobError } from "../index.js";
import { parseDependencies } from "../lib/dependencies.js";
import { partitionFor, partitionName } from "../lib/partitions.js";
import { parseIdKey } from "../lib/status.js";
import { fromDeps } from "../lib/views.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The 19 enqueue arguments of a job that sets nothing but its type: the script's defaults. */
const PLAIN = ["null", "json", "3", "1800000", "exponential:1000:600000", "0", "0", "0", "0"];
const UNSET_TAIL = ["", "2", "finished", "0", "0", "0", ""];

/**
 * A stand-in for an ioredis connection: the flow command records its arguments and answers
 * as the script does (`created` for a job with no parents, else `waiting`), or rejects with
 * `refusal`; the enqueue command answers `created`. Every queue has `partitions`
 * partitions, and a job enqueued before is in the partition `known` names.
 * @param {{ partitions?: number, refusal?: string }} [options]
 */
function flowConnection({ partitions = 1, refusal } = {}) {
  /** @type {string[][]} */
  const calls = [];
  /** @type {string[][]} */
  const enqueueCalls = [];
  /** @type {string[]} */
  const queues = [];
  /** @type {Map<string, string>} */
  const known = new Map();
  const connection = {
    calls,
    enqueueCalls,
    queues,
    known,
    /** @param {string} name */
    defineCommand(name) {
      // @ts-ignore: the command is added the way ioredis adds it
      connection[name] = async (/** @type {any[]} */ ...given) => {
        // ioredis flattens an array argument into its elements, as this does.
        const args = /** @type {string[]} */ (given.flat());
        if (name !== "flotillaEnqueueFlowV2") {
          enqueueCalls.push(args);
          return [args[4], "created"];
        }
        calls.push(args);
        if (refusal !== undefined) throw new Error(refusal);
        return jobsOf(args).map(({ parents }) => (parents.length > 0 ? "waiting" : "created"));
      };
    },
    hget: async () => String(partitions),
    /** @param {string} _set @param {string} queue */
    sadd: async (_set, queue) => {
      queues.push(queue);
      return 1;
    },
    /** @param {string} record */
    exists: async (record) => {
      const queue = record.slice(record.indexOf("{") + 1, record.indexOf("}"));
      return known.get(record.slice(record.lastIndexOf(":job:") + 5)) === queue ? 1 : 0;
    },
    zscore: async () => null,
  };
  return /** @type {typeof connection & import("ioredis").Redis} */ (/** @type {unknown} */ (connection));
}

/**
 * Each job's 19 enqueue arguments and its parents, from a flow call's arguments (after its
 * key count and its one key).
 * @param {string[]} call
 */
function jobsOf(call) {
  const args = call.slice(2);
  const jobs = [];
  let at = 3;
  for (let j = 0; j < Number(args[1]); j++) {
    const job = args.slice(at, at + 19);
    const count = Number(args[at + 19]);
    const parents = [];
    for (let i = 0; i < count; i++) parents.push(args.slice(at + 20 + 3 * i, at + 23 + 3 * i));
    jobs.push({ job, parents });
    at += 20 + 3 * count;
  }
  assert.equal(at, args.length, "the arguments match the job count");
  return jobs;
}

/** @param {ReturnType<typeof flowConnection>} connection */
function clientOn(connection) {
  return new Client(connection);
}

describe("a flow", () => {
  test("is one call with every job and its parents, in order", async () => {
    const connection = flowConnection();
    const created = await clientOn(connection).enqueueFlow([
      { type: "fetch", payload: { n: 1 }, id: "a" },
      { type: "fetch", id: "b", after: ["a"] },
      { type: "fetch", id: "c", after: [{ queue: "default", id: "a", policy: "run" }] },
      { type: "merge", id: "d", after: ["b", { id: "c", policy: "wait" }] },
    ]);
    assert.deepEqual(created, [
      { id: "a", queue: "default", outcome: "created" },
      { id: "b", queue: "default", outcome: "waiting" },
      { id: "c", queue: "default", outcome: "waiting" },
      { id: "d", queue: "default", outcome: "waiting" },
    ]);
    const [call] = connection.calls;
    assert.deepEqual(call.slice(0, 2), [1, "flotilla:{default}:q"], "the call goes where its first job's stream is");
    assert.deepEqual(call.slice(2, 4), ["flotilla", "4"]);
    assert.match(call[4], UUID, "a flow is named by a random UUID");
    const jobs = jobsOf(call);
    assert.deepEqual(jobs[0].job, ["a", "fetch", '{"n":1}', ...PLAIN.slice(1), "default", ...UNSET_TAIL]);
    assert.deepEqual(jobs[3].job, ["d", "merge", ...PLAIN, "default", ...UNSET_TAIL]);
    assert.deepEqual(
      jobs.map(({ parents }) => parents),
      [[], [["default", "a", "cancel"]], [["default", "a", "run"]], [["default", "b", "cancel"], ["default", "c", "wait"]]],
    );
    assert.deepEqual(connection.queues, ["default"], "the queue is named once");
  });

  test("passes every option of its jobs, a time counting from the parents", async () => {
    const connection = flowConnection();
    await clientOn(connection).enqueueFlow(
      [
        {
          type: "report",
          payload: [1],
          id: "r",
          queue: "low",
          maxAttempts: 5,
          timeoutMs: 2000,
          backoff: "fixed:10",
          delayMs: 1500,
          expiresAtMs: 1_900_000_000_000,
          group: "account-42",
          after: [{ queue: "default", id: "before" }],
        },
        { type: "report", id: "s", runAt: 1_900_000_000_000, after: ["r"] },
      ],
      { flowId: "nightly-7" },
    );
    const [call] = connection.calls;
    assert.equal(call[1], "flotilla:{low}:q");
    assert.equal(call[4], "nightly-7");
    const [r, s] = jobsOf(call);
    assert.deepEqual(r.job, [
      "r", "report", "[1]", "json", "5", "2000", "fixed:10", "0", "1500", "0", "0", "low", "", "2", "finished",
      "0", "0", "1900000000000", "account-42",
    ]);
    assert.deepEqual(r.parents, [["default", "before", "cancel"]]);
    assert.deepEqual(s.job.slice(7, 9), ["1900000000000", "0"]);
    assert.deepEqual(s.parents, [["low", "r", "cancel"]], "a job of the flow is named in the queue it was given");
    assert.deepEqual(connection.queues, ["low", "default"], "the queues of the flow's jobs, not of its parents");
  });

  test("gives a job without an id a random UUID, and an empty flow writes nothing", async () => {
    const connection = flowConnection();
    const client = clientOn(connection);
    const [created] = await client.enqueueFlow([{ type: "noop" }]);
    assert.match(created.id, UUID);
    assert.equal(jobsOf(connection.calls[0])[0].job[0], created.id);
    assert.deepEqual(await client.enqueueFlow([]), []);
    assert.equal(connection.calls.length, 1);
  });

  test("on partitions, places each job by its group or id and names its parents there", async () => {
    const connection = flowConnection({ partitions: 4 });
    connection.known.set("before", partitionName("default", 3));
    const created = await clientOn(connection).enqueueFlow([
      { type: "noop", id: "a" },
      { type: "noop", id: "b", group: "account-42", after: ["a", { id: "before", policy: "run" }] },
    ]);
    const aQueue = partitionName("default", partitionFor("a", 4));
    const bQueue = partitionName("default", partitionFor("account-42", 4));
    assert.deepEqual(
      created.map(({ id, queue }) => [id, queue]),
      [["a", aQueue], ["b", bQueue]],
    );
    const [call] = connection.calls;
    const [a, b] = jobsOf(call);
    assert.equal(call[1], `flotilla:{${aQueue}}:q`);
    assert.deepEqual([a.job[11], b.job[11]], [aQueue, bQueue]);
    assert.deepEqual(b.parents, [[aQueue, "a", "cancel"], [partitionName("default", 3), "before", "run"]]);
  });

  test("refuses a parent in no partition before anything is written", async () => {
    const connection = flowConnection({ partitions: 4 });
    await assert.rejects(
      clientOn(connection).enqueue("noop", null, { after: [{ queue: "default", id: "nobody" }] }),
      /parent nobody is not known in any partition of queue default/,
    );
    assert.deepEqual([connection.calls, connection.queues], [[], []]);
  });
});

describe("a job enqueued after others", () => {
  test("is a flow of one, named by none", async () => {
    const connection = flowConnection();
    const client = clientOn(connection);
    const id = await client.enqueue("noop", { a: 1 }, {
      after: [{ queue: "default", id: "p1" }, { id: "p2", queue: "low", outcome: "created" }, "mail:1-0"],
    });
    const [call] = connection.calls;
    assert.match(id, UUID);
    assert.deepEqual(call.slice(1, 5), ["flotilla:{default}:q", "flotilla", "1", ""]);
    const [{ job, parents }] = jobsOf(call);
    assert.deepEqual(job.slice(0, 3), [id, "noop", '{"a":1}']);
    assert.deepEqual(parents, [["default", "p1", "cancel"], ["low", "p2", "cancel"], ["mail", "1-0", "cancel"]]);
  });

  test("with a delay or a time passes it, counted from its parents", async () => {
    const connection = flowConnection();
    const client = clientOn(connection);
    await client.enqueueIn(2000, "noop", null, { id: "later", after: ["p"] });
    await client.enqueueAt(1_900_000_000_000, "noop", null, { after: ["p"], group: "g" });
    const [[inJob], [atJob]] = connection.calls.map(jobsOf);
    assert.deepEqual([inJob.job[0], ...inJob.job.slice(7, 9)], ["later", "0", "2000"]);
    assert.deepEqual(inJob.parents, [["default", "p", "cancel"]], "an id alone is of the default queue");
    assert.deepEqual([...atJob.job.slice(7, 9), atJob.job[18]], ["1900000000000", "0", "g"]);
  });

  test("with no parents is enqueued as before", async () => {
    const connection = flowConnection();
    assert.equal(await clientOn(connection).enqueue("noop", null, { id: "own", after: [] }), "own");
    assert.equal(connection.calls.length, 0);
    assert.equal(connection.enqueueCalls.length, 1);
  });

  test("holds no unique or debounce key", async () => {
    const connection = flowConnection();
    const client = clientOn(connection);
    const holdsNeither = (/** @type {unknown} */ error) =>
      error instanceof InvalidJobError && error.field === "after" && /a job that waits for other jobs holds neither/.test(error.message);
    await assert.rejects(client.enqueueUnique("k", "noop", null, /** @type {any} */ ({ after: ["p"] })), holdsNeither);
    await assert.rejects(client.enqueueDebounced("k", "noop", null, /** @type {any} */ ({ delayMs: 5, after: ["p"] })), holdsNeither);
    await assert.rejects(client.enqueueFlow([/** @type {any} */ ({ type: "noop", uniqueKey: "k" })]), holdsNeither);
    await assert.rejects(client.enqueueFlow([/** @type {any} */ ({ type: "noop", debounceKey: "k" })]), holdsNeither);
    assert.deepEqual([connection.calls, connection.enqueueCalls], [[], []]);
  });
});

describe("refusals", () => {
  for (const refusal of [
    "BAD_FLOW the flow has a cycle through job x",
    "BAD_FLOW job x: parent nobody is not known in queue default",
    "BAD_ARG job x: expires at 1: expected whole milliseconds",
    "BAD_ID job 1-1: id 1-1 has the form of a stream entry id",
  ]) {
    test(`the script's ${refusal.split(" ")[0]} is an InvalidJobError with its reason`, async () => {
      const client = clientOn(flowConnection({ refusal }));
      await assert.rejects(client.enqueueFlow([{ type: "noop", id: "x" }]), (error) => {
        assert.ok(error instanceof InvalidJobError);
        assert.equal(error.field, "flow");
        assert.equal(error.message, `invalid flow: ${refusal}`);
        return true;
      });
      await assert.rejects(client.enqueue("noop", null, { id: "x", after: ["p"] }), (error) => {
        assert.ok(error instanceof InvalidJobError);
        assert.equal(error.field, "after");
        assert.equal(error.message, `invalid after: ${refusal}`);
        return true;
      });
    });
  }

  test("another script error is not a refusal", async () => {
    const client = clientOn(flowConnection({ refusal: "OOM command not allowed" }));
    await assert.rejects(client.enqueueFlow([{ type: "noop" }]), (error) => {
      assert.ok(!(error instanceof InvalidJobError));
      assert.match(String(error), /OOM/);
      return true;
    });
  });

  for (const [after, field, why] of /** @type {[unknown, string, RegExp][]} */ ([
    ["a", "after", /an array of parents/],
    [{ id: "a" }, "after", /an array of parents/],
    [[42], "after", /a parent: \{ queue, id, policy \} or an id/],
    [[null], "after", /a parent/],
    [[{ id: "a", policy: "later" }], "after", /a policy of cancel, run or wait/],
    [[{ queue: "de fault", id: "a" }], "after", /invalid after: 1-256 printable/],
    [[{ id: "" }], "after", /invalid after: 1-256 printable/],
    [[{ id: "a", polcy: "run" }], "polcy", /not an option here/],
  ])) {
    test(`a bad parent (${JSON.stringify(after)}) is refused before anything is written`, async () => {
      const connection = flowConnection();
      const client = clientOn(connection);
      const refused = (/** @type {unknown} */ error) => error instanceof InvalidJobError && error.field === field && why.test(error.message);
      await assert.rejects(client.enqueue("noop", null, /** @type {any} */ ({ after })), refused);
      await assert.rejects(client.enqueueFlow([/** @type {any} */ ({ type: "noop", after })]), refused);
      assert.deepEqual([connection.calls, connection.queues], [[], []]);
    });
  }

  test("an id naming jobs of the flow in two queues is refused", async () => {
    await assert.rejects(
      clientOn(flowConnection()).enqueueFlow([
        { type: "noop", id: "a" },
        { type: "noop", id: "a", queue: "low" },
        { type: "noop", after: ["a"] },
      ]),
      /names jobs of the flow in two queues/,
    );
  });

  test("bad jobs and options are refused naming their field", async () => {
    const client = clientOn(flowConnection());
    for (const [jobs, field] of /** @type {[unknown, string][]} */ ([
      [[{ type: "no type" }], "type"],
      [[{ type: "noop", id: "1-0" }], "id"],
      [[{ type: "noop", maxAttempts: 0 }], "maxAttempts"],
      [[{ type: "noop", delayMs: -1 }], "delayMs"],
      [[{ type: "noop", delayMs: 1, runAt: 1 }], "runAt"],
      [[{ type: "noop", timeout: 5 }], "timeout"],
      [["noop"], "jobs"],
      [{ type: "noop" }, "jobs"],
    ])) {
      await assert.rejects(
        client.enqueueFlow(/** @type {any} */ (jobs)),
        (error) => error instanceof InvalidJobError && error.field === field,
        JSON.stringify(jobs),
      );
    }
    await assert.rejects(
      client.enqueueFlow([{ type: "noop" }], { flowId: "a b" }),
      (error) => error instanceof InvalidJobError && error.field === "flowId",
    );
    await assert.rejects(
      client.enqueueFlow([{ type: "noop" }], /** @type {any} */ ({ id: "x" })),
      (error) => error instanceof InvalidJobError && error.field === "id",
    );
  });
});

/**
 * A waiting job's enqueue arguments as Lua's cmsgpack packs 19 strings: an array16 of
 * str8 (or fixstr) strings.
 * @param {string[]} items
 */
function packed(items) {
  const parts = [Buffer.from([0xdc, 0, items.length])];
  for (const item of items) {
    const bytes = Buffer.from(item);
    parts.push(bytes.length < 32 ? Buffer.from([0xa0 + bytes.length]) : Buffer.from([0xd9, bytes.length]), bytes);
  }
  return Buffer.concat(parts);
}

const ARGS = [
  "d", "merge", '{"n":1}', "json", "5", "2000", "fixed:10", "0", "1500", "0", "0", "low", "", "2", "finished",
  "0", "0", "1900000000000", "account-42",
];

describe("a job waiting for its parents", () => {
  test("has an id key holding `waiting`", () => {
    assert.deepEqual(parseIdKey("waiting"), { forParents: true });
    assert.deepEqual(parseIdKey(Buffer.from("waiting")), { forParents: true });
    assert.equal(parseIdKey("waiting "), null);
  });

  test("reads from what it was given", async () => {
    const { unpackStrings } = await import("../lib/waiting.js");
    const args = /** @type {Buffer[]} */ (unpackStrings(packed(ARGS)));
    assert.deepEqual(fromDeps(args, "d", "low"), {
      id: "d",
      queue: "low",
      status: "waiting",
      type: "merge",
      attempts: 0,
      maxAttempts: 5,
      result: null,
      error: null,
      errors: [],
      payload: { n: 1 },
      runAt: null,
      nextRunAt: null,
      expiresAt: 1_900_000_000_000,
      group: "account-42",
    });
    const bare = fromDeps(["e", "noop", "null", "json", "0"].map((a) => Buffer.from(a)), "e", "default");
    assert.deepEqual([bare.maxAttempts, bare.payload, bare.expiresAt, bare.group], [null, null, null, null]);
  });
});

describe("a deps hash", () => {
  test("reads as every parent in order, with its policy and how it ended", () => {
    const waiting = parseDependencies({
      left: Buffer.from("1"),
      edges: Buffer.from("3"),
      blocked: Buffer.from("1"),
      type: Buffer.from("merge"),
      job: packed(ARGS),
      "o:default a": Buffer.from("completed"),
      "r:default a": Buffer.from('{"rows":7}'),
      "b:low b": Buffer.from("dead"),
      "o:default c": Buffer.from("cancelled"),
      parents: Buffer.from("cancel default a\nwait low b\nrun default c\ncancel default e"),
      flow: Buffer.from("default nightly-7"),
    });
    assert.deepEqual(waiting, {
      edges: 3,
      left: 1,
      waiting: true,
      blocked: 1,
      parents: [
        { queue: "default", id: "a", policy: "cancel", outcome: "completed", result: { rows: 7 }, blocked: false },
        { queue: "low", id: "b", policy: "wait", outcome: "dead", result: null, blocked: true },
        { queue: "default", id: "c", policy: "run", outcome: "cancelled", result: null, blocked: false },
        { queue: "default", id: "e", policy: "cancel", outcome: null, result: null, blocked: false },
      ],
      releasedAt: null,
      flowId: "nightly-7",
      flowQueue: "default",
    });
  });

  test("let go, or without its list of parents, names those that ended by queue and id", () => {
    const released = parseDependencies({
      edges: "2",
      released_at: "1700000000500",
      "o:low z": "completed",
      "o:default a": "completed",
      "r:default a": "not json",
    });
    assert.equal(released?.waiting, false);
    assert.deepEqual([released?.left, released?.releasedAt, released?.flowId], [null, 1_700_000_000_500, null]);
    assert.deepEqual(
      released?.parents.map((p) => [p.queue, p.id, p.policy, p.result]),
      [["default", "a", null, "not json"], ["low", "z", null, null]],
    );
    assert.equal(parseDependencies({}), null);
  });
});
