// Reads jobs' status on a real fleet: running, failing to dead, retried to success, unknown, and waiting out of time.

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";

import { WaitTimeoutError } from "../index.js";
import { SKIP_WITHOUT_FLEET, eventually, freshName, useFleet } from "../test-support/fleet.js";

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
