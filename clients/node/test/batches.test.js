// Batches (protocol 2.19): the arguments passed to the published batch script, how its calls are split, what is refused, and how a batch reads; no Redis needed.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, InvalidJobError } from "../index.js";
import { parseBatch, parseCounts } from "../lib/batches.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The 19 enqueue arguments of a job that sets nothing but its type, after id and type: the script's defaults. */
const PLAIN = ["null", "json", "3", "1800000", "exponential:1000:600000", "0", "0", "0", "0"];
const UNSET_TAIL = ["", "2", "finished", "0", "0", "0", ""];

/**
 * A plain job's 19 enqueue arguments.
 * @param {string} id
 * @param {string} [type]
 * @param {string} [queue]
 */
function plain(id, type = "noop", queue = "default") {
  return [id, type, ...PLAIN, queue, ...UNSET_TAIL];
}

/**
 * A stand-in for an ioredis connection: the batch command records its arguments and answers
 * the counts of the jobs it was given, or rejects with `refusal`; `hash` is what HGETALL
 * answers.
 * @param {{ refusal?: string, hash?: Record<string, string> }} [options]
 */
function batchConnection({ refusal, hash = {} } = {}) {
  /** @type {string[][]} */
  const calls = [];
  /** @type {string[]} */
  const queues = [];
  /** @type {string[]} */
  const read = [];
  let total = 0;
  const connection = {
    calls,
    queues,
    read,
    /** @param {string} name */
    defineCommand(name) {
      // @ts-ignore: the command is added the way ioredis adds it
      connection[name] = async (/** @type {(string | string[])[]} */ ...given) => {
        assert.equal(name, "flotillaBatchV2", "only the batch script is called");
        // ioredis flattens arrays among a command's arguments.
        const args = /** @type {string[]} */ (given.flat());
        calls.push(args);
        if (refusal !== undefined) throw new Error(refusal);
        total += jobsOf(args).length;
        return [total, total, 0, 0, 0, args[6] === "seal" ? 1 : 0];
      };
    },
    hget: async () => null,
    /** @param {string} key */
    hgetall: async (key) => {
      read.push(key);
      return hash;
    },
    /** @param {string} _set @param {string} queue */
    sadd: async (_set, queue) => {
      queues.push(queue);
      return 1;
    },
  };
  return /** @type {typeof connection & import("ioredis").Redis} */ (/** @type {unknown} */ (connection));
}

/**
 * A batch call's arguments after its key count and its one key.
 * @param {string[]} call
 */
const argsOf = (call) => call.slice(2);

/**
 * Each callback's kind and 19 enqueue arguments, from a batch call.
 * @param {string[]} call
 */
function callbacksOf(call) {
  const args = argsOf(call);
  return Array.from({ length: Number(args[5]) }, (_, i) => [args[6 + 20 * i], args.slice(7 + 20 * i, 26 + 20 * i)]);
}

/**
 * Each job's 19 enqueue arguments, from a batch call.
 * @param {string[]} call
 */
function jobsOf(call) {
  const args = argsOf(call);
  const at = 6 + 20 * Number(args[5]);
  const count = Number(args[at]);
  assert.equal(at + 1 + 19 * count, args.length, "the arguments match the counts");
  return Array.from({ length: count }, (_, i) => args.slice(at + 1 + 19 * i, at + 20 + 19 * i));
}

test("a batch is opened and sealed in one call with its callbacks and jobs", async () => {
  const connection = batchConnection();
  const counts = await new Client(connection).enqueueBatch(
    "import-42",
    [{ type: "fetch", payload: { n: 1 }, id: "a" }, { type: "fetch" }],
    {
      queue: "imports",
      onSuccess: { type: "report" },
      onComplete: { type: "cleanup", id: "tidy", queue: "low" },
      onDeath: { type: "alert" },
    },
  );
  assert.deepEqual(counts, { total: 2, pending: 2, completed: 0, dead: 0, ended: 0, sealed: true });
  const [call] = connection.calls;
  assert.equal(connection.calls.length, 1);
  assert.deepEqual(call.slice(0, 2), [1, "flotilla:{imports}:q"], "the call goes where the batch's queue's stream is");
  assert.deepEqual(argsOf(call).slice(0, 6), ["flotilla", "imports", "import-42", "open", "seal", "3"]);
  assert.deepEqual(callbacksOf(call), [
    ["success", plain("import-42.on_success", "report", "imports")],
    ["complete", plain("tidy", "cleanup", "low")],
    ["death", plain("import-42.on_death", "alert", "imports")],
  ]);
  const [a, b] = jobsOf(call);
  assert.deepEqual(a, ["a", "fetch", '{"n":1}', ...PLAIN.slice(1), "imports", ...UNSET_TAIL]);
  assert.match(b[0], UUID, "a job without an id gets a random UUID");
  assert.deepEqual(b, plain(b[0], "fetch", "imports"));
  assert.deepEqual([...new Set(connection.queues)].sort(), ["imports", "low"]);
});

test("every option of a job of a batch is passed", async () => {
  const connection = batchConnection();
  await new Client(connection).enqueueBatch("b", [
    {
      type: "fetch",
      id: "j",
      maxAttempts: 5,
      timeoutMs: 2000,
      backoff: "fixed:100",
      delayMs: 1500,
      expiresAtMs: 4_000_000_000_000,
      group: "acme",
    },
    { type: "fetch", id: "k", runAt: 1_900_000_000_000 },
  ]);
  assert.deepEqual(jobsOf(connection.calls[0]), [
    ["j", "fetch", "null", "json", "5", "2000", "fixed:100", "0", "1500", "0", "0", "default", "", "2", "finished", "0", "0", "4000000000000", "acme"],
    ["k", "fetch", "null", "json", "3", "1800000", "exponential:1000:600000", "1900000000000", "0", "0", "0", "default", ...UNSET_TAIL],
  ]);
});

test("a batch kept open is not sealed, and an empty one is opened with no job", async () => {
  const connection = batchConnection();
  const client = new Client(connection);
  const counts = await client.enqueueBatch("b", [{ type: "noop", id: "x" }], { keepOpen: true });
  assert.equal(counts.sealed, false);
  assert.deepEqual(argsOf(connection.calls[0]).slice(3, 6), ["open", "", "0"]);
  await client.enqueueBatch("c", [], { onComplete: { type: "noop" } });
  assert.deepEqual(argsOf(connection.calls[1]).slice(3, 5), ["open", "seal"]);
  assert.deepEqual(jobsOf(connection.calls[1]), []);
});

test("more than 20 000 jobs are opened unsealed, then added, the last call sealing", async () => {
  const connection = batchConnection();
  const jobs = Array.from({ length: 40_001 }, (_, n) => ({ type: "noop", id: `j${n}` }));
  const counts = await new Client(connection).enqueueBatch("big", jobs, { onSuccess: { type: "noop" } });
  assert.deepEqual(
    connection.calls.map((call) => [...argsOf(call).slice(3, 6), jobsOf(call).length]),
    [
      ["open", "", "1", 20_000],
      ["add", "", "0", 20_000],
      ["add", "seal", "0", 1],
    ],
  );
  assert.deepEqual(
    connection.calls.flatMap((call) => jobsOf(call).map((job) => job[0])),
    jobs.map((job) => job.id),
  );
  assert.equal(counts.total, 40_001);
  assert.equal(counts.sealed, true);

  const kept = batchConnection();
  await new Client(kept).enqueueBatch("big", jobs.slice(0, 20_001), { keepOpen: true });
  assert.deepEqual(
    kept.calls.map((call) => argsOf(call).slice(3, 5)),
    [
      ["open", ""],
      ["add", ""],
    ],
  );
});

test("an id twice across calls is refused before any call", async () => {
  const connection = batchConnection();
  const jobs = Array.from({ length: 20_000 }, (_, n) => ({ type: "noop", id: `j${n}` }));
  await assert.rejects(new Client(connection).enqueueBatch("big", [...jobs, { type: "noop", id: "j7" }]), (error) => {
    assert.ok(error instanceof InvalidJobError);
    assert.match(error.message, /job id j7 is in the batch twice/);
    return true;
  });
  assert.deepEqual(connection.calls, []);
});

test("jobs are added and the batch sealed", async () => {
  const connection = batchConnection();
  const client = new Client(connection);
  await client.addToBatch("b", [{ type: "noop", id: "x" }], { queue: "imports" });
  await client.addToBatch("b", [{ type: "noop", id: "y" }], { queue: "imports", seal: true });
  await client.addToBatch("b", [], { queue: "imports" });
  const counts = await client.sealBatch("b", { queue: "imports" });
  assert.equal(counts.sealed, true);
  assert.deepEqual(
    connection.calls.map((call) => [call[1], argsOf(call).slice(0, 6), jobsOf(call)]),
    [
      ["flotilla:{imports}:q", ["flotilla", "imports", "b", "add", "", "0"], [plain("x", "noop", "imports")]],
      ["flotilla:{imports}:q", ["flotilla", "imports", "b", "add", "seal", "0"], [plain("y", "noop", "imports")]],
      ["flotilla:{imports}:q", ["flotilla", "imports", "b", "add", "", "0"], []],
      ["flotilla:{imports}:q", ["flotilla", "imports", "b", "seal", "seal", "0"], []],
    ],
  );
  const big = batchConnection();
  await new Client(big).addToBatch(
    "b",
    Array.from({ length: 20_001 }, (_, n) => ({ type: "noop", id: `j${n}` })),
    { seal: true },
  );
  assert.deepEqual(
    big.calls.map((call) => [...argsOf(call).slice(3, 5), jobsOf(call).length]),
    [
      ["add", "", 20_000],
      ["add", "seal", 1],
    ],
  );
});

test("the script's refusals reject with InvalidJobError carrying its reason", async () => {
  for (const refusal of [
    "BAD_BATCH batch b is sealed: no job may be added",
    "BAD_ARG job x: timeout 0: expected whole milliseconds from 0 to 315360000000",
    "BAD_ID job 1-1: id 1-1 has the form of a stream entry id",
  ]) {
    const client = new Client(batchConnection({ refusal }));
    await assert.rejects(client.addToBatch("b", [{ type: "noop", id: "x" }]), (error) => {
      assert.ok(error instanceof InvalidJobError);
      assert.equal(error.field, "batch");
      assert.ok(error.message.includes(refusal), error.message);
      return true;
    });
  }
  await assert.rejects(new Client(batchConnection({ refusal: "OOM command not allowed" })).sealBatch("b"), /OOM/);
});

test("a job that waits for others, holds a key or is no job is refused, and nothing is sent", async () => {
  const connection = batchConnection();
  const client = new Client(connection);
  /**
   * @param {Promise<unknown>} promise
   * @param {string} field
   * @param {RegExp} [message]
   */
  const refused = (promise, field, message) =>
    assert.rejects(promise, (error) => {
      assert.ok(error instanceof InvalidJobError, String(error));
      assert.equal(error.field, field);
      if (message) assert.match(error.message, message);
      return true;
    });
  const waits = /a job of a batch waits for no other job/;
  // @ts-expect-error: a job of a batch takes no `after`
  await refused(client.enqueueBatch("b", [{ type: "noop", after: ["a"] }]), "after", waits);
  // @ts-expect-error: nor does a callback
  await refused(client.enqueueBatch("b", [], { onComplete: { type: "noop", after: ["a"] } }), "after", waits);
  // @ts-expect-error: nor a unique key
  await refused(client.enqueueBatch("b", [{ type: "noop", uniqueKey: "k" }]), "jobs", waits);
  // @ts-expect-error: jobs are objects
  await refused(client.enqueueBatch("b", ["noop"]), "jobs");
  // @ts-expect-error: in an array
  await refused(client.enqueueBatch("b", { type: "noop" }), "jobs");
  // @ts-expect-error: a callback is a job
  await refused(client.enqueueBatch("b", [], { onSuccess: "noop" }), "onSuccess");
  await refused(client.enqueueBatch("a batch", []), "batchId");
  await refused(client.enqueueBatch("b", [{ type: "noop", delayMs: 1, runAt: 1_900_000_000_000 }]), "runAt");
  await refused(client.enqueueBatch("b", [{ type: "noop", id: "1-1" }]), "id");
  // @ts-expect-error: an option it does not know
  await assert.rejects(client.enqueueBatch("b", [], { sealed: true }), /sealed/);
  assert.deepEqual(connection.calls, []);
});

test("a batch reads from its hash, and is null when gone", async () => {
  const connection = batchConnection({
    hash: {
      total: "3",
      pending: "0",
      completed: "1",
      dead: "1",
      ended: "1",
      sealed: "1",
      created_at: "1700000000000",
      finished_at: "1700000000500",
      "cb:success": "default b.on_success",
      "done:success": "dropped",
      "cb:complete": "low tidy",
      "done:complete": "fired",
      "cb:death": "default b.on_death",
      "m:mail#2 j2": "dead",
    },
  });
  const batch = await new Client(connection).batch("b", { queue: "imports" });
  assert.deepEqual(connection.read, ["flotilla:{imports}:batch:b"]);
  assert.deepEqual(batch, {
    id: "b",
    queue: "imports",
    total: 3,
    pending: 0,
    completed: 1,
    dead: 1,
    ended: 1,
    sealed: true,
    createdAt: 1_700_000_000_000,
    finishedAt: 1_700_000_000_500,
    callbacks: [
      { kind: "success", queue: "default", id: "b.on_success", decided: "dropped" },
      { kind: "complete", queue: "low", id: "tidy", decided: "fired" },
      { kind: "death", queue: "default", id: "b.on_death", decided: null },
    ],
    deadJobs: [{ queue: "mail#2", id: "j2" }],
  });
  assert.equal(await new Client(batchConnection()).batch("b"), null);
  const open = parseBatch("b", "default", { total: "1", pending: "1", sealed: "0", created_at: "5" });
  assert.ok(open !== null);
  assert.deepEqual([open.total, open.pending, open.sealed, open.createdAt, open.finishedAt], [1, 1, false, 5, null]);
  assert.deepEqual([open.callbacks, open.deadJobs], [[], []]);
});

test("the script's counts are read from strings or integers, and anything else is an error", () => {
  assert.deepEqual(parseCounts(["4", "1", "3", "0", "0", "1"]), {
    total: 4,
    pending: 1,
    completed: 3,
    dead: 0,
    ended: 0,
    sealed: true,
  });
  assert.deepEqual(parseCounts([4, 4, 0, 0, 0, 0]).sealed, false);
  assert.throws(() => parseCounts(["4", "1"]), /unexpected reply from the batch script/);
  assert.throws(() => parseCounts(["a", "1", "3", "0", "0", "1"]), /unexpected reply/);
});
