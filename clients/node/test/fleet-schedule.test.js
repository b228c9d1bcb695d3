// Enqueues jobs for later on a real fleet and checks they wait for their time, and that a past time runs now.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { SKIP_WITHOUT_FLEET, freshName, useFleet } from "../test-support/fleet.js";

describe("scheduled jobs on a fleet", { skip: SKIP_WITHOUT_FLEET, concurrency: true }, () => {
  const fleet = useFleet();

  /**
   * The record's times, which show when the job became due and when it started.
   * @param {string} id
   */
  async function timesOf(id) {
    const [createdAt, runAt, startedAt] = await fleet.redis.hmget(
      `flotilla:{default}:job:${id}`,
      "created_at",
      "run_at",
      "started_at",
    );
    return { createdAt: Number(createdAt), runAt: Number(runAt), startedAt: Number(startedAt) };
  }

  // When a completed job began: a delayed job with an id runs without its record once due,
  // so its completion in `done`, named by its id key, tells (completed at, less run_ms).
  async function startedAtOf(id) {
    const held = await fleet.redis.get(`flotilla:{default}:id:${id}`);
    const done = held?.startsWith("done ") ? held.slice(5) : null;
    assert.ok(done, `the id key names a completion, not ${held}`);
    const [[, fields]] = await fleet.redis.xrange("flotilla:{default}:done", done, done);
    const runMs = Number(fields[fields.indexOf("run_ms") + 1]);
    return Number(done.split("-")[0]) - runMs;
  }

  test("enqueueIn: scheduled at first, and runs once its delay has passed, not before", async () => {
    const { client } = fleet;
    const sent = Date.now();
    const id = await client.enqueueIn(300, "sleep", { ms: 10 });
    assert.equal((await client.status(id))?.status, "scheduled");
    const { createdAt, runAt } = await timesOf(id);
    assert.equal(runAt - createdAt, 300, "due 300 ms after the enqueue, on the server's clock");
    const status = await client.wait(id, { timeoutMs: 5000 });
    const elapsed = Date.now() - sent;
    assert.equal(status.status, "completed");
    assert.deepEqual(status.result, { slept_ms: 10 });
    const startedAt = await startedAtOf(id);
    assert.ok(startedAt >= runAt, `started at ${startedAt}, before it was due at ${runAt}`);
    assert.ok(elapsed >= 300, `completed ${elapsed} ms after it was enqueued`);
  });

  test("enqueueAt a future time: scheduled for exactly that time", async () => {
    const { client } = fleet;
    const when = new Date(Date.now() + 300);
    const id = await client.enqueueAt(when, "noop", null, { id: freshName("node-at") });
    assert.equal((await client.status(id))?.status, "scheduled");
    assert.equal((await timesOf(id)).runAt, when.getTime());
    const status = await client.wait(id, { timeoutMs: 5000 });
    assert.equal(status.status, "completed");
    assert.ok((await startedAtOf(id)) >= when.getTime());
  });

  test("enqueueAt a past time runs now", async () => {
    const { client } = fleet;
    const id = await client.enqueueAt(Date.now() - 60_000, "sleep", { ms: 10 });
    assert.match(id, /^[0-9a-f-]{36}$/, "a random UUID");
    const first = await client.status(id);
    assert.notEqual(first?.status, "scheduled");
    const status = await client.wait(id, { timeoutMs: 5000 });
    assert.deepEqual(status.result, { slept_ms: 10 });
  });

  test("a unique job with a delay is scheduled, and holds its key meanwhile", async () => {
    const { client } = fleet;
    const key = freshName("node-unique-later");
    const first = await client.enqueueUnique(key, "noop", null, { delayMs: 200, ttlMs: 10_000 });
    assert.equal(first.created, true);
    assert.equal((await client.status(first.id))?.status, "scheduled");
    assert.deepEqual(await client.enqueueUnique(key, "noop", null), { id: first.id, created: false });
    assert.equal((await client.wait(first.id, { timeoutMs: 5000 })).status, "completed");
  });
});
