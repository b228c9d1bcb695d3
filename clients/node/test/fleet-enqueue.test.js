// Enqueues jobs on a real fleet (fast path, own id, unique key) and checks what was written and that each ran once.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Client, QueueFullError } from "../index.js";
import { REDIS_URL, SKIP_WITHOUT_FLEET, completionsOf, dropQueue, fieldsOf, freshName, idleQueue, useFleet } from "../test-support/fleet.js";

describe("enqueue on a fleet", { skip: SKIP_WITHOUT_FLEET, concurrency: true }, () => {
  const fleet = useFleet();
  const idle = fleet.idle;

  test("a fast-path job runs and its result is read back from done", async () => {
    const { client, redis } = fleet;
    const id = await client.enqueue("sleep", { ms: 50 });
    assert.match(id, /^\d+-\d+$/, "a fast-path job's id is its entry id");
    const status = await client.wait(id, { timeoutMs: 5000 });
    assert.equal(status.status, "completed");
    assert.deepEqual(status.result, { slept_ms: 50 });
    assert.equal(status.type, "sleep");
    assert.equal(status.attempts, 1);
    assert.equal(status.payload, null, "a completion keeps no payload");
    assert.equal(await completionsOf(redis, "default", id), 1);
    assert.equal(await redis.sismember("flotilla:{global}:queues", "default"), 1);
  });

  test("a fast-path job on another queue", async () => {
    const id = await fleet.client.enqueue("sleep", { ms: 20 }, { queue: "low" });
    const status = await fleet.client.wait(id, { queue: "low", timeoutMs: 5000 });
    assert.deepEqual(status.result, { slept_ms: 20 });
    assert.equal(status.queue, "low");
  });

  test("the fast path writes type, payload and only the options given", async () => {
    const { client, redis } = fleet;
    const plain = await client.enqueue("noop", { n: 1 }, { queue: idle });
    const set = await client.enqueue("noop", null, {
      queue: idle,
      maxAttempts: 5,
      timeoutMs: 2000,
      backoff: "list:10,20",
    });
    const entries = new Map(
      (await redis.xrange(`flotilla:{${idle}}:q`, "-", "+")).map(([entry, flat]) => [entry, fieldsOf(flat)]),
    );
    assert.deepEqual(entries.get(plain), { type: "noop", payload: '{"n":1}' });
    assert.deepEqual(entries.get(set), {
      type: "noop",
      payload: "null",
      max_attempts: "5",
      timeout: "2000",
      backoff: "list:10,20",
    });
    assert.equal(await redis.sismember("flotilla:{global}:queues", idle), 1);

    const pending = await client.status(plain, { queue: idle });
    assert.deepEqual(pending, {
      id: plain,
      queue: idle,
      status: "pending",
      type: "noop",
      attempts: 0,
      maxAttempts: null,
      result: null,
      error: null,
      errors: [],
      payload: { n: 1 },
      runAt: Number(plain.split("-")[0]),
      nextRunAt: null,
      expiresAt: null,
      group: null,
    });
    assert.equal((await client.status(set, { queue: idle }))?.maxAttempts, 5);
  });

  test("a job with an id is one entry named by its id key, with the script's defaults, and no record", async () => {
    const { client, redis } = fleet;
    const id = freshName("node-own-id");
    assert.equal(await client.enqueue("noop", { a: 1 }, { queue: idle, id }), id);
    assert.equal(await redis.exists(`flotilla:{${idle}}:job:${id}`), 0, "no record for a job with an id to run now");
    const entry = await redis.get(`flotilla:{${idle}}:id:${id}`);
    assert.match(String(entry), /^\d+-\d+$/, "the id key names the entry carrying the job");
    const carryingIt = async () =>
      (await redis.xrange(`flotilla:{${idle}}:q`, "-", "+")).filter(([, flat]) => fieldsOf(flat).id === id);
    const carrying = await carryingIt();
    assert.equal(carrying.length, 1);
    assert.equal(carrying[0][0], entry);
    assert.deepEqual(fieldsOf(carrying[0][1]), {
      id,
      type: "noop",
      payload: '{"a":1}',
      content_type: "json",
      max_attempts: "3",
      timeout: "1800000",
      backoff: "exponential:1000:600000",
      // The id key names the entry from the start (protocol 2.8): a worker runs it unclaimed.
      held: "1",
    });
    const status = await client.status(id, { queue: idle });
    assert.equal(status?.status, "pending");
    assert.equal(status?.maxAttempts, 3);
    assert.deepEqual(status?.payload, { a: 1 });

    // The same id again writes nothing: no entry, and the id key as it was.
    assert.equal(await client.enqueue("noop", { a: 2 }, { queue: idle, id }), id);
    assert.deepEqual(await carryingIt(), carrying);
    assert.equal(await redis.get(`flotilla:{${idle}}:id:${id}`), entry);
  });

  test("a job with an id runs once, however often it is enqueued", async () => {
    const { client, redis } = fleet;
    const id = freshName("node-sleep");
    assert.equal(await client.enqueue("sleep", { ms: 100 }, { id, queue: "critical" }), id);
    assert.equal(await client.enqueue("sleep", { ms: 100 }, { id, queue: "critical" }), id);
    const status = await client.wait(id, { queue: "critical", timeoutMs: 5000 });
    assert.equal(status.status, "completed");
    assert.deepEqual(status.result, { slept_ms: 100 });
    assert.equal(status.type, "sleep");
    assert.equal(status.payload, null, "completed through done_ids: a completion keeps no payload");
    assert.equal(status.attempts, 1);
    assert.equal(await client.enqueue("sleep", { ms: 100 }, { id, queue: "critical" }), id, "after it ran, too");
    assert.equal(await completionsOf(redis, "critical", id), 1);
    // Protocol 2.8: the id key went with the completion, and `done_ids` remembers the id.
    assert.equal(await redis.exists(`flotilla:{critical}:id:${id}`), 0, "no id key once completed");
    assert.notEqual(await redis.zscore("flotilla:{critical}:done_ids", id), null, "the id is in done_ids");
    assert.equal(await redis.exists(`flotilla:{critical}:job:${id}`), 0, "a job that ran once has no record");
  });

  test("a unique job is enqueued once while its key is held", async () => {
    const { client, redis } = fleet;
    const key = freshName("node-unique");
    const first = await client.enqueueUnique(key, "sleep", { ms: 150 });
    assert.equal(first.created, true);
    const second = await client.enqueueUnique(key, "sleep", { ms: 150 });
    assert.deepEqual(second, { id: first.id, created: false });
    const status = await client.wait(first.id, { timeoutMs: 5000 });
    assert.equal(status.status, "completed");
    assert.deepEqual(status.result, { slept_ms: 150 });
    assert.equal(await completionsOf(redis, "default", first.id), 1);
    // Completion releases the key: the next job with it is a new one.
    const third = await client.enqueueUnique(key, "noop", null);
    assert.equal(third.created, true);
    assert.notEqual(third.id, first.id);
    await client.wait(third.id, { timeoutMs: 5000 });
  });

  test("a debounce key folds a burst into one job that runs with the last payload", async () => {
    const { client } = fleet;
    const key = freshName("node-debounce");
    const first = await client.enqueueDebounced(key, "noop", { n: 1 }, { delayMs: 400, maxDelayMs: 5000 });
    const second = await client.enqueueDebounced(key, "noop", { n: 2 }, { delayMs: 400 });
    assert.equal(first.folded, false);
    assert.deepEqual(second, { id: first.id, folded: true });
    const waiting = await client.status(first.id);
    assert.equal(waiting?.status, "scheduled");
    assert.deepEqual(waiting?.payload, { n: 2 });
    assert.equal((await client.wait(first.id, { timeoutMs: 5000 })).status, "completed");
    const third = await client.enqueueDebounced(key, "noop", { n: 3 }, { delayMs: 100 });
    assert.equal(third.folded, false);
    assert.notEqual(third.id, first.id);
  });

  test("a unique job held for its TTL keeps its key after it completes", async () => {
    const { client } = fleet;
    const key = freshName("node-unique-ttl");
    const first = await client.enqueueUnique(key, "noop", null, { ttlMs: 60_000, holdForTtl: true });
    assert.equal((await client.wait(first.id, { timeoutMs: 5000 })).status, "completed");
    assert.deepEqual(await client.enqueueUnique(key, "noop", null), { id: first.id, created: false });
  });

  test("a queue at the client's cap refuses jobs, on the fast path and through the script", async () => {
    const capped = Client.fromUrl(/** @type {string} */ (REDIS_URL), { maxQueueLen: 2 });
    const queue = idleQueue();
    const isQueueFull = (/** @type {unknown} */ error) =>
      error instanceof QueueFullError && error.queue === queue && /^QUEUE_FULL queue \S+ holds 2 jobs, its limit is 2$/.test(error.message);
    try {
      await capped.enqueue("noop", null, { queue });
      await capped.enqueueIn(60_000, "noop", null, { queue }); // scheduled jobs count too
      await assert.rejects(capped.enqueue("noop", null, { queue }), isQueueFull);
      await assert.rejects(capped.enqueue("noop", null, { queue, id: freshName("node-full") }), isQueueFull);
      await assert.rejects(capped.enqueueAt(Date.now(), "noop", null, { queue }), isQueueFull);
    } finally {
      await capped.quit();
      await dropQueue(fleet.redis, queue);
    }
  });
});
