// Batches (protocol 2.19) on a real fleet: callbacks fire once the batch's jobs ended, an open batch holds them back until sealed, and what a refusal leaves.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { InvalidJobError } from "../index.js";
import { SKIP_WITHOUT_FLEET, eventually, freshName, useFleet } from "../test-support/fleet.js";

/**
 * Every key of `queue`, sorted.
 * @param {import("ioredis").Redis} redis
 * @param {string} queue
 */
async function queueKeys(redis, queue) {
  return (await redis.keys(`flotilla:{${queue}}:*`)).sort();
}

/**
 * Asserts that `promise` rejects with an InvalidJobError whose message holds `text`.
 * @param {Promise<unknown>} promise
 * @param {string} text
 */
function refused(promise, text) {
  return assert.rejects(promise, (error) => {
    assert.ok(error instanceof InvalidJobError, String(error));
    assert.equal(error.field, "batch");
    assert.ok(error.message.includes(text), error.message);
    return true;
  });
}

describe("batches on a fleet", { skip: SKIP_WITHOUT_FLEET, concurrency: true }, () => {
  const fleet = useFleet();
  const idle = fleet.idle;

  test("a batch's callbacks run once every job completed", async () => {
    const { client } = fleet;
    const batchId = freshName("node-batch");
    const jobs = Array.from({ length: 20 }, (_, n) => ({ type: "noop", payload: { n } }));
    const counts = await client.enqueueBatch(batchId, jobs, {
      onSuccess: { type: "noop", payload: { on: "success" } },
      onComplete: { type: "noop", payload: { on: "complete" } },
    });
    assert.deepEqual([counts.total, counts.sealed, counts.dead, counts.ended], [20, true, 0, 0]);
    for (const kind of ["success", "complete"]) {
      const done = await client.wait(`${batchId}.on_${kind}`, { timeoutMs: 10_000 });
      assert.equal(done.status, "completed", JSON.stringify(done));
    }
    const batch = await eventually(
      () => client.batch(batchId),
      (read) => read !== null && read.callbacks.every((cb) => cb.decided !== null),
      10_000,
    );
    assert.ok(batch !== null);
    assert.equal(batch.completed, batch.total);
    assert.deepEqual([batch.total, batch.pending, batch.dead, batch.ended, batch.sealed], [20, 0, 0, 0, true]);
    assert.ok(batch.createdAt !== null && batch.finishedAt !== null && batch.createdAt <= batch.finishedAt);
    assert.deepEqual(batch.callbacks, [
      { kind: "success", queue: "default", id: `${batchId}.on_success`, decided: "fired" },
      { kind: "complete", queue: "default", id: `${batchId}.on_complete`, decided: "fired" },
    ]);
    assert.deepEqual(batch.deadJobs, []);
  });

  test("an open batch's complete callback waits for the seal", async () => {
    const { client } = fleet;
    const batchId = freshName("node-open");
    const callback = `${batchId}.on_complete`;
    const noop = () => ({ type: "noop" });
    let counts = await client.enqueueBatch(batchId, [noop(), noop(), noop()], { onComplete: noop(), keepOpen: true });
    assert.deepEqual([counts.total, counts.sealed], [3, false]);
    counts = await client.addToBatch(batchId, [noop(), noop()]);
    assert.deepEqual([counts.total, counts.sealed], [5, false]);
    // Every job completes, and the callback still waits: more jobs may come.
    const batch = await eventually(
      () => client.batch(batchId),
      (read) => read !== null && read.completed === 5,
      10_000,
    );
    assert.ok(batch !== null);
    assert.deepEqual([batch.completed, batch.pending, batch.finishedAt], [5, 0, null]);
    assert.equal((await client.status(callback))?.status, "waiting");
    assert.equal(batch.callbacks[0].decided, null);

    const sealed = await client.sealBatch(batchId);
    assert.deepEqual([sealed.total, sealed.completed, sealed.sealed], [5, 5, true]);
    const done = await client.wait(callback, { timeoutMs: 10_000 });
    assert.equal(done.status, "completed");
    assert.deepEqual(await client.sealBatch(batchId), sealed, "sealing a sealed batch changes nothing");
  });

  test("adding to a sealed batch is refused", async () => {
    const { client, redis } = fleet;
    const batchId = freshName("node-sealed");
    await client.enqueueBatch(batchId, [{ type: "noop" }], { queue: idle });
    const before = await queueKeys(redis, idle);
    await refused(
      client.addToBatch(batchId, [{ type: "noop", id: freshName("late") }], { queue: idle }),
      `BAD_BATCH batch ${batchId} is sealed: no job may be added`,
    );
    assert.deepEqual(await queueKeys(redis, idle), before);
    const nobody = freshName("node-none");
    await refused(client.sealBatch(nobody, { queue: idle }), `BAD_BATCH no batch ${nobody} in queue ${idle}`);
  });

  test("an id twice is refused and nothing is written", async () => {
    const { client, redis } = fleet;
    const queue = freshName("node-twice-queue");
    const batchId = freshName("node-twice");
    const twice = freshName("job");
    await refused(
      client.enqueueBatch(batchId, [{ type: "noop", id: twice }, { type: "noop" }, { type: "noop", id: twice }], {
        queue,
        onComplete: { type: "noop" },
      }),
      `BAD_BATCH job id ${twice} is in the call twice`,
    );
    assert.deepEqual(await queueKeys(redis, queue), []);
    assert.equal(await client.batch(batchId, { queue }), null);
    // A callback's id is one of the call's too.
    await refused(
      client.enqueueBatch(batchId, [{ type: "noop", id: `${batchId}.on_death` }], { queue, onDeath: { type: "noop" } }),
      `job id ${batchId}.on_death is in the call twice`,
    );
    assert.deepEqual(await queueKeys(redis, queue), []);
    // A batch id in use is refused too, and leaves the batch as it was.
    await client.enqueueBatch(batchId, [{ type: "noop" }], { queue, keepOpen: true });
    const before = await queueKeys(redis, queue);
    await refused(
      client.enqueueBatch(batchId, [{ type: "noop" }], { queue }),
      `BAD_BATCH batch ${batchId} exists already in queue ${queue}`,
    );
    assert.deepEqual(await queueKeys(redis, queue), before);
    const keys = await queueKeys(redis, queue);
    if (keys.length > 0) await redis.del(...keys);
    await redis.srem("flotilla:{global}:queues", queue);
  });
});
