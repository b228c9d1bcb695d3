// Reads jobs' status on a real fleet: running, failing to dead, retried to success, unknown, and waiting out of time.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";

import { WaitTimeoutError } from "../index.js";
import { SKIP_WITHOUT_FLEET, dropQueue, eventually, freshName, idleQueue, useFleet } from "../test-support/fleet.js";

describe("status on a fleet", { skip: SKIP_WITHOUT_FLEET, concurrency: true }, () => {
  const fleet = useFleet();
  const idle = fleet.idle;

  test("a fast-path job is running while a worker has its entry", async () => {
    const { client } = fleet;
    const id = await client.enqueue("sleep", { ms: 800 });
    const running = await eventually(() => client.status(id), (s) => s?.status === "running", 3000);
    assert.equal(running?.status, "running");
    assert.equal(running?.attempts, 1, "the delivery counts as the first attempt");
    assert.equal(running?.type, "sleep");
    assert.deepEqual(running?.payload, { ms: 800 });
    assert.equal((await client.wait(id, { timeoutMs: 5000 })).status, "completed");
  });

  test("a job that always fails ends dead, with each attempt's error", async () => {
    const { client } = fleet;
    const id = await client.enqueue("fail", { times: -1 }, { maxAttempts: 2, backoff: "fixed:50" });
    const status = await client.wait(id, { timeoutMs: 5000 });
    assert.equal(status.status, "dead");
    assert.equal(status.attempts, 2);
    assert.equal(status.maxAttempts, 2);
    assert.match(String(status.error), /^planned failure on attempt 2/);
    assert.deepEqual(
      status.errors.map(({ attempt, error }) => ({ attempt, error })),
      [
        { attempt: 1, error: "planned failure on attempt 1" },
        { attempt: 2, error: "planned failure on attempt 2" },
      ],
    );
    for (const { at } of status.errors) assert.ok(at > 0, "each error has its time");
    assert.deepEqual(status.payload, { times: -1 }, "the record keeps the payload");
  });

  test("a job that fails once is retried and completes; wait does not stop at failed", async () => {
    const { client } = fleet;
    const id = await client.enqueue("fail", { times: 1 }, { id: freshName("node-retry"), backoff: "fixed:1000" });
    const failed = await eventually(() => client.status(id), (s) => s?.status === "failed", 3000);
    assert.equal(failed?.status, "failed");
    assert.equal(failed?.attempts, 1);
    assert.deepEqual(
      failed?.errors.map(({ attempt, error }) => ({ attempt, error })),
      [{ attempt: 1, error: "planned failure on attempt 1" }],
    );
    const status = await client.wait(id, { timeoutMs: 5000 });
    assert.equal(status.status, "completed");
    assert.deepEqual(status.result, { succeeded_on_attempt: 2 });
    assert.equal(status.attempts, 2);
  });

  for (const withId of [false, true]) {
    test(`a job whose retry waits is failed without a record (${withId ? "an id of its own" : "fast path"})`, async () => {
      const { client, redis } = fleet;
      const id = await client.enqueue(
        "fail",
        { times: 1 },
        { id: withId ? freshName("node-retry-later") : undefined, backoff: "fixed:60000" },
      );
      try {
        const failed = await eventually(() => client.status(id), (s) => s?.status === "failed", 3000);
        assert.ok(failed !== null && failed.status === "failed", `last seen ${failed?.status}`);
        assert.equal(failed.id, id);
        assert.equal(failed.type, "fail");
        assert.equal(failed.attempts, 1);
        assert.match(String(failed.error), /^planned failure on attempt 1/);
        assert.deepEqual(
          failed.errors.map(({ attempt, error }) => ({ attempt, error })),
          [{ attempt: 1, error: "planned failure on attempt 1" }],
        );
        assert.deepEqual(failed.payload, { times: 1 });
        // Due a minute after the failure, as `later` has it.
        assert.equal(failed.nextRunAt, Number(await redis.zscore("flotilla:{default}:later", id)));
        assert.equal(failed.nextRunAt, failed.errors[0].at + 60_000);
        assert.equal(await redis.exists(`flotilla:{default}:job:${id}`), 0, "no record while the retry waits");
        await assert.rejects(client.wait(id, { timeoutMs: 200, pollMs: 20 }), /last status: failed/);
      } finally {
        // The retry is not run a minute from now on a fleet the suite has left.
        await redis.zrem("flotilla:{default}:later", id);
        await redis.del(`flotilla:{default}:id:${id}`);
      }
    });
  }

  /**
   * A millisecond on the server's clock, as the workers stamp completions.
   * @param {import("ioredis").Redis} redis
   */
  async function serverMs(redis) {
    const [seconds, micros] = await redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  /**
   * The fields of a completion in `done`, as a worker writes them.
   * @param {string} id @param {string} result
   */
  const completion = (id, result) => ["id", id, "type", "noop", "attempts", "1", "worker", "w", "run_ms", "1", "result", result];

  test("a completed job with an id of its own is found through done_ids", async () => {
    const { client, redis } = fleet;
    // A queue of its own: its completions are written by hand, at ids of their own.
    const queue = idleQueue();
    try {
      // As protocol 2.8 leaves a job with an id of its own that completed without a
      // record: no id key, its id in `done_ids` scored by the millisecond from which its
      // completion is in `done`, where another job's completion of that millisecond comes
      // first.
      const id = freshName("node-done-id");
      const ms = await serverMs(redis);
      const done = `flotilla:{${queue}}:done`;
      await redis.xadd(done, `${ms}-0`, ...completion("other", ""));
      await redis.xadd(done, `${ms}-1`, ...completion(id, '{"ok":1}'));
      await redis.zadd(`flotilla:{${queue}}:done_ids`, ms, id);
      assert.equal(await redis.exists(`flotilla:{${queue}}:id:${id}`), 0);
      const found = await client.status(id, { queue });
      assert.deepEqual(found, {
        id,
        queue,
        status: "completed",
        type: "noop",
        attempts: 1,
        maxAttempts: null,
        result: { ok: 1 },
        error: null,
        errors: [],
        payload: null,
        runAt: null,
        nextRunAt: null,
        expiresAt: null,
        group: null,
      });
      assert.deepEqual(await client.wait(id, { queue, timeoutMs: 1000 }), found);
      // Gone from `done_ids` (its completion trimmed), it is found nowhere.
      await redis.zrem(`flotilla:{${queue}}:done_ids`, id);
      assert.equal(await client.status(id, { queue }), null);
    } finally {
      await dropQueue(redis, queue);
    }
  });

  test("each completion of a done entry holding a batch is found", async () => {
    const { client, redis } = fleet;
    const queue = idleQueue();
    try {
      // From protocol 2.10 a `done` entry may hold several completions, each a run of
      // fields that begins with `id`; a job without an id of its own is found from its
      // enqueue time.
      const ms = await serverMs(redis);
      const plain = `${ms - 1000}-0`;
      const ids = [freshName("node-batch"), freshName("node-batch"), plain];
      const done = `flotilla:{${queue}}:done`;
      await redis.xadd(done, `${ms}-0`, ...ids.flatMap((id, n) => completion(id, `{"n":${n}}`)));
      await redis.zadd(`flotilla:{${queue}}:done_ids`, ms, ids[0], ms, ids[1]);
      for (const [n, id] of ids.entries()) {
        const found = await client.status(id, { queue });
        assert.equal(found?.status, "completed", id);
        assert.deepEqual(found?.result, { n }, id);
      }
    } finally {
      await dropQueue(redis, queue);
    }
  });

  test("an id key naming a completion, as protocol 2.7 wrote it, is still read", async () => {
    const { client, redis } = fleet;
    const queue = idleQueue();
    try {
      // A worker of protocol 2.7 left the key naming the completion, and no `done_ids`: a
      // rolling upgrade still reads it, until the key expires.
      const id = freshName("node-done-key");
      const doneId = `${await serverMs(redis)}-0`;
      await redis.xadd(`flotilla:{${queue}}:done`, doneId, ...completion(id, '{"ok":1}'));
      await redis.set(`flotilla:{${queue}}:id:${id}`, `done ${doneId}`, "PX", 60_000);
      const found = await client.status(id, { queue });
      assert.equal(found?.status, "completed");
      assert.deepEqual(found?.result, { ok: 1 });
      assert.deepEqual(await client.wait(id, { queue, timeoutMs: 1000 }), found);
    } finally {
      await dropQueue(redis, queue);
    }
  });

  test("an unknown id is null, whether or not it looks like an entry id", async () => {
    const { client } = fleet;
    assert.equal(await client.status(randomUUID()), null);
    assert.equal(await client.status("1-1"), null);
    assert.equal(await client.status(`${Date.now() + 3_600_000}-0`), null);
  });

  test("a fast-path id is its queue's only: another queue does not know it", async () => {
    const { client } = fleet;
    const id = await client.enqueue("noop", null, { queue: idle });
    assert.equal((await client.status(id, { queue: idle }))?.status, "pending");
    assert.equal(await client.status(id, { queue: "low" }), null);
  });

  test("wait gives up after its timeout, naming the last status", async () => {
    const { client } = fleet;
    const id = await client.enqueue("noop", null, { queue: idle });
    await assert.rejects(client.wait(id, { queue: idle, timeoutMs: 150, pollMs: 20 }), (error) => {
      assert.ok(error instanceof WaitTimeoutError);
      assert.equal(error.lastStatus, "pending");
      assert.match(error.message, /last status: pending/);
      return true;
    });
    await assert.rejects(client.wait("1-1", { timeoutMs: 50 }), /last status: not found/);
  });
});
