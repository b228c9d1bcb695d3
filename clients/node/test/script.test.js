// Checks the keys and arguments passed to the enqueue script, and how its replies and errors are read; no Redis needed.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Client, QueueFullError } from "../index.js";
import { Keys } from "../lib/keys.js";
import { partitionFor, partitionName } from "../lib/partitions.js";
import { defineEnqueue, runEnqueue } from "../lib/script.js";

/**
 * A connection whose enqueue command records its arguments and answers with `reply`. Every
 * queue has one partition unless `partitions` says how many, and naming a queue among the
 * known ones does nothing, so a client can run on it too.
 * @param {(args: string[]) => unknown} reply
 * @param {string | null} [partitions]
 */
function scriptConnection(reply, partitions = null) {
  /** @type {unknown[][]} */
  const calls = [];
  const connection = {
    calls,
    /** @param {string} name */
    defineCommand(name) {
      // @ts-ignore: the command is added the way ioredis adds it
      connection[name] = async (/** @type {unknown[]} */ ...args) => {
        calls.push(args);
        return reply(/** @type {string[]} */ (args));
      };
    },
    /** @param {string} _hash @param {string} _field */
    hget: async (_hash, _field) => partitions,
    sadd: async () => 0,
  };
  // Only the commands the client uses are there; it is typed as a connection for the calls.
  const typed = /** @type {typeof connection & import("ioredis").Redis} */ (/** @type {unknown} */ (connection));
  defineEnqueue(typed);
  return typed;
}

const keys = new Keys("flotilla");

test("a job to run now: three keys, and the protocol's defaults for what it leaves out", async () => {
  const connection = scriptConnection(() => ["job-1", "created"]);
  const reply = await runEnqueue(connection, keys, { queue: "default", id: "job-1", type: "noop", payload: "null" });
  assert.deepEqual(reply, { id: "job-1", outcome: "created" });
  assert.deepEqual(connection.calls[0], [
    3,
    "flotilla:{default}:q",
    "flotilla:{default}:job:job-1",
    "flotilla:{default}:delayed",
    "job-1", // ARGV[1] id
    "noop", // ARGV[2] type
    "null", // ARGV[3] payload
    "json", // ARGV[4] content type
    "3", // ARGV[5] max attempts
    "1800000", // ARGV[6] timeout ms
    "exponential:1000:600000", // ARGV[7] backoff
    "0", // ARGV[8] run at: not set
    "0", // ARGV[9] delay: none
    "0", // ARGV[10] unique TTL
    "0", // ARGV[11] queue cap: none
    "default", // ARGV[12] queue
    "", // ARGV[13] trace
    "2", // ARGV[14] protocol version
    "finished", // ARGV[15] a unique key is released when the job finishes
  ]);
});

test("a unique, delayed job with its own policy: the unique key is the fourth key", async () => {
  const connection = scriptConnection(() => ["holder", "duplicate"]);
  const reply = await runEnqueue(connection, keys, {
    queue: "low",
    id: "job-2",
    type: "t",
    payload: "{}",
    maxAttempts: 7,
    timeoutMs: 500,
    backoff: "fixed:50",
    delayMs: 250,
    unique: { key: "report:42", ttlMs: 60000 },
  });
  assert.deepEqual(reply, { id: "holder", outcome: "duplicate" });
  const [count, ...rest] = connection.calls[0];
  assert.equal(count, 4);
  assert.equal(rest[3], "flotilla:{low}:unique:report:42");
  assert.deepEqual(rest.slice(8, 14), ["7", "500", "fixed:50", "0", "250", "60000"]);
});

test("a run time goes in ARGV[8]; the epoch itself is sent as 1, since 0 means none", async () => {
  const connection = scriptConnection(() => ["j", "created"]);
  await runEnqueue(connection, keys, { queue: "q", id: "j", type: "t", payload: "1", runAtMs: 1_900_000_000_000 });
  await runEnqueue(connection, keys, { queue: "q", id: "j", type: "t", payload: "1", runAtMs: 0 });
  assert.equal(connection.calls[0][3 + 8], "1900000000000");
  assert.equal(connection.calls[1][3 + 8], "1");
});

test("a queue cap goes in ARGV[11], and a key held for its TTL says so in ARGV[15]", async () => {
  const connection = scriptConnection(() => ["j", "created"]);
  await runEnqueue(connection, keys, {
    queue: "q",
    id: "j",
    type: "t",
    payload: "1",
    maxQueueLen: 100,
    unique: { key: "k", ttlMs: 1000, holdForTtl: true },
  });
  const args = connection.calls[0].slice(5);
  assert.equal(args[10], "100");
  assert.equal(args[14], "expiry");
});

test("QUEUE_FULL from the script is a QueueFullError", async () => {
  const connection = scriptConnection(() => {
    throw Object.assign(new Error("QUEUE_FULL queue q holds 5 jobs, its limit is 5"), { name: "ReplyError" });
  });
  await assert.rejects(
    runEnqueue(connection, keys, { queue: "q", id: "j", type: "t", payload: "1" }),
    (error) => {
      assert.ok(error instanceof QueueFullError);
      assert.equal(error.queue, "q");
      assert.match(error.message, /holds 5 jobs/);
      return true;
    },
  );
});

test("other script errors pass through as they are", async () => {
  const connection = scriptConnection(() => {
    throw new Error("NOSCRIPT or worse");
  });
  await assert.rejects(runEnqueue(connection, keys, { queue: "q", id: "j", type: "t", payload: "1" }), /NOSCRIPT or worse/);
});

test("an expiry is ARGV[18], after a debounce delay and max of 0", async () => {
  const connection = scriptConnection(() => ["j", "created"]);
  await runEnqueue(connection, keys, { queue: "q", id: "j", type: "t", payload: "1", expiresAtMs: 1_900_000_000_000 });
  const args = connection.calls[0].slice(4);
  assert.equal(args.length, 18);
  assert.deepEqual(args.slice(15), ["0", "0", "1900000000000"]);
});

test("a debounced job keeps its delay and max before its expiry, and no expiry leaves ARGV[18] out", async () => {
  const connection = scriptConnection(() => ["j", "created"]);
  const debounce = { key: "doc-7", delayMs: 400, maxMs: 5000 };
  const job = { queue: "q", id: "j", type: "t", payload: "1", debounce };
  await runEnqueue(connection, keys, { ...job, expiresAtMs: 1_900_000_000_000 });
  await runEnqueue(connection, keys, job);
  assert.equal(connection.calls[0][4], "flotilla:{q}:debounce:doc-7");
  assert.deepEqual(connection.calls[0].slice(5 + 15), ["400", "5000", "1900000000000"]);
  assert.deepEqual(connection.calls[1].slice(5 + 15), ["400", "5000"]);
});

test("a group is ARGV[19], after debounce and expiry of 0, or after an expiry", async () => {
  const connection = scriptConnection(() => ["j", "created"]);
  const job = { queue: "q", id: "j", type: "t", payload: "1", group: "account-42" };
  await runEnqueue(connection, keys, job);
  await runEnqueue(connection, keys, { ...job, expiresAtMs: 1_900_000_000_000 });
  assert.equal(connection.calls[0][0], 3, "a job of a group names no key of its own");
  assert.deepEqual(connection.calls[0].slice(4 + 15), ["0", "0", "0", "account-42"]);
  assert.deepEqual(connection.calls[1].slice(4 + 15), ["0", "0", "1900000000000", "account-42"]);
});

test("a job of a group keeps its time (ARGV[8] or ARGV[9]) and passes its group as ARGV[19]", async () => {
  // Protocol 2.18: it waits for its time in `later`, then its group's turn.
  const connection = scriptConnection(() => ["j", "created"]);
  const job = { queue: "q", id: "j", type: "t", payload: "1", group: "account-42" };
  await runEnqueue(connection, keys, { ...job, delayMs: 100 });
  await runEnqueue(connection, keys, { ...job, runAtMs: 1_900_000_000_000 });
  const [delayed, timed] = connection.calls.map((call) => call.slice(4));
  assert.deepEqual(delayed.slice(7, 9), ["0", "100"]);
  assert.deepEqual(delayed.slice(15), ["0", "0", "0", "account-42"]);
  assert.deepEqual(timed.slice(7, 9), ["1900000000000", "0"]);
  assert.deepEqual(timed.slice(15), ["0", "0", "0", "account-42"]);
});

test("a debounced job of a group passes its group after its delay, max and expiry", async () => {
  const connection = scriptConnection(() => ["j", "created"]);
  const debounce = { key: "doc-7", delayMs: 400, maxMs: 5000 };
  const job = { queue: "q", id: "j", type: "t", payload: "1", debounce, group: "account-42" };
  await runEnqueue(connection, keys, job);
  await runEnqueue(connection, keys, { ...job, expiresAtMs: 1_900_000_000_000 });
  assert.equal(connection.calls[0][4], "flotilla:{q}:debounce:doc-7");
  assert.deepEqual(connection.calls[0].slice(5 + 15), ["400", "5000", "0", "account-42"]);
  assert.deepEqual(connection.calls[1].slice(5 + 15), ["400", "5000", "1900000000000", "account-42"]);
});

test("the client passes a group with a delay, a time or a debounce key", async () => {
  /** The script's arguments (ARGV) of a recorded call: they follow the key count and the keys. @param {unknown[]} call */
  const argv = (call) => call.slice(1 + Number(call[0]));
  const connection = scriptConnection((args) => [argv(args)[0], "created"]);
  const client = new Client(connection);
  const group = "account-42";
  const delayed = await client.enqueueIn(100, "noop", null, { group });
  const timed = await client.enqueueAt(1_900_000_000_000, "noop", null, { id: "at-1", group });
  const debounced = await client.enqueueDebounced("doc-7", "noop", null, { delayMs: 400, group });
  const [inArgs, atArgs, debounceArgs] = connection.calls.map(argv);
  assert.deepEqual([inArgs[0], inArgs[8]], [delayed, "100"]);
  assert.deepEqual([timed, atArgs[0], atArgs[7]], ["at-1", "at-1", "1900000000000"]);
  assert.deepEqual(debounced, { id: debounceArgs[0], folded: false });
  assert.equal(connection.calls[2][4], "flotilla:{default}:debounce:doc-7");
  for (const args of [inArgs, atArgs, debounceArgs]) assert.equal(args[18], group, String(args));
  // Without a group nothing changes: ARGV[19] is left out.
  await client.enqueueIn(100, "noop");
  assert.equal(argv(connection.calls[3]).length, 15);
});

test("a unique job of a group passes its key and its group as ARGV[19]", async () => {
  // Protocol 2.18: it keeps a record, `pending` with no entry while it waits its turn.
  const connection = scriptConnection(() => ["j", "created"]);
  const job = { queue: "q", id: "j", type: "t", payload: "1", group: "account-42" };
  await runEnqueue(connection, keys, { ...job, unique: { key: "k", ttlMs: 1000 } });
  const [call] = connection.calls;
  assert.equal(call[0], 4);
  assert.equal(call[4], "flotilla:{q}:unique:k");
  const args = call.slice(5);
  assert.deepEqual(args.slice(7, 10), ["0", "0", "1000"]);
  assert.deepEqual(args.slice(15), ["0", "0", "0", "account-42"]);
});

test("a unique job of a group passes its time, its key and its group", async () => {
  // Protocol 2.18: it waits in `delayed`, `scheduled`, then its group's turn, holding its key.
  const connection = scriptConnection(() => ["j", "created"]);
  const job = { queue: "q", id: "j", type: "t", payload: "1", group: "account-42", unique: { key: "k", ttlMs: 1000 } };
  await runEnqueue(connection, keys, { ...job, delayMs: 100 });
  await runEnqueue(connection, keys, { ...job, runAtMs: 1_900_000_000_000 });
  const [delayed, timed] = connection.calls;
  for (const call of [delayed, timed]) {
    assert.equal(call[4], "flotilla:{q}:unique:k");
    assert.deepEqual(call.slice(5 + 15), ["0", "0", "0", "account-42"]);
  }
  assert.deepEqual(delayed.slice(5 + 7, 5 + 10), ["0", "100", "1000"]);
  assert.deepEqual(timed.slice(5 + 7, 5 + 10), ["1900000000000", "0", "1000"]);
});

test("the client passes a unique job's group, with or without a delay", async () => {
  /** The script's arguments (ARGV) of a recorded call: they follow the key count and the keys. @param {unknown[]} call */
  const argv = (call) => call.slice(1 + Number(call[0]));
  const connection = scriptConnection((args) => [argv(args)[0], "created"]);
  const client = new Client(connection);
  const held = await client.enqueueUnique("k", "noop", null, { group: "account-42" });
  const later = await client.enqueueUnique("k", "noop", null, { group: "account-42", delayMs: 5, holdForTtl: true });
  const [heldArgs, laterArgs] = connection.calls.map(argv);
  assert.deepEqual(held, { id: heldArgs[0], created: true });
  assert.deepEqual(later, { id: laterArgs[0], created: true });
  for (const call of connection.calls) assert.equal(call[4], "flotilla:{default}:unique:k");
  assert.deepEqual(heldArgs.slice(7, 10), ["0", "0", "3600000"]);
  assert.deepEqual(heldArgs.slice(15), ["0", "0", "0", "account-42"]);
  assert.deepEqual(laterArgs.slice(7, 10), ["0", "5", "3600000"]);
  assert.equal(laterArgs[14], "expiry");
  assert.deepEqual(laterArgs.slice(15), ["0", "0", "0", "account-42"]);
});

test("a unique job of a group is placed by its group", async () => {
  // Its group's line and window are in its group's partition, so its key lives there too.
  const [group, key] = ["account-42", "k"];
  const [byGroup, byKey] = [partitionFor(group, 4), partitionFor(key, 4)];
  assert.notEqual(byGroup, byKey, "the two would place it apart");
  /** The script's arguments (ARGV) of a recorded call: they follow the key count and the keys. @param {unknown[]} call */
  const argv = (call) => call.slice(1 + Number(call[0]));
  const connection = scriptConnection((args) => [argv(args)[0], "created"], "4");
  const client = new Client(connection);
  await client.enqueueUnique(key, "noop", null, { group, delayMs: 5 });
  const queue = partitionName("default", byGroup);
  assert.equal(connection.calls[0][1], keys.stream(queue));
  assert.equal(connection.calls[0][4], keys.unique(queue, key));
  assert.equal(argv(connection.calls[0])[11], queue);
  // Without a group, its key places it.
  await client.enqueueUnique(key, "noop", null, { delayMs: 5 });
  assert.equal(connection.calls[1][1], keys.stream(partitionName("default", byKey)));
});
