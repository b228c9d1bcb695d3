// Jobs of a group on a real fleet: with the queue's group window at 1 they wait their turn, pending (those with a time or a debounce once it comes; a unique one holding its key, with a time or not), and all complete.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { parseWaiting } from "../lib/waiting.js";
import { SKIP_WITHOUT_FLEET, eventually, freshName, useFleet } from "../test-support/fleet.js";

/**
 * Runs `body` while `default` lets one job of each group through at a time, then lifts
 * the window: only jobs of a group heed it, and no other test enqueues one, so tests
 * running beside these are not affected.
 * @param {import("ioredis").Redis} redis
 * @param {() => Promise<void>} body
 */
async function oneAtATimePerGroup(redis, body) {
  const limit = "flotilla:{default}:group_limit";
  await redis.hset(limit, "concurrency", "1");
  try {
    await body();
  } finally {
    await redis.hdel(limit, "concurrency");
  }
}

describe("groups on a fleet", { skip: SKIP_WITHOUT_FLEET }, () => {
  const fleet = useFleet();

  test("jobs of a group wait their turn and all complete", async () => {
    const { client, redis } = fleet;
    await oneAtATimePerGroup(redis, async () => {
      const group = freshName("node-group");
      const first = await client.enqueue("sleep", { ms: 500 }, { group });
      const second = await client.enqueue("sleep", { ms: 10 }, { group });
      const third = await client.enqueue("sleep", { ms: 10 }, { group, id: freshName("node-grouped") });
      const held = await redis.getBuffer(`flotilla:{default}:id:${second}`);
      assert.ok(held !== null && held.subarray(0, 8).toString() === "grouped ", String(held));
      const waiting = await client.status(second);
      assert.deepEqual([waiting?.status, waiting?.group], ["pending", group]);
      for (const id of [first, second, third]) {
        assert.equal((await client.wait(id, { timeoutMs: 10_000 })).status, "completed", id);
      }
    });
  });

  test("a job of a group with a time or a debounce waits its group's turn once due", async () => {
    const { client, redis } = fleet;
    await oneAtATimePerGroup(redis, async () => {
      const group = freshName("node-group");
      const first = await client.enqueue("sleep", { ms: 1500 }, { group });
      const started = await eventually(() => client.status(first), (status) => status?.status === "running", 5000);
      assert.equal(started?.status, "running");
      const [seconds, micros] = await redis.time();
      const due = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000) + 200;
      const delayed = await client.enqueueIn(200, "sleep", { ms: 10 }, { group });
      const timed = await client.enqueueAt(due, "sleep", { ms: 10 }, { group, id: freshName("node-grouped-at") });
      const debounced = await client.enqueueDebounced(freshName("node-debounce"), "sleep", { ms: 10 }, { delayMs: 200, group });
      const later = [delayed, timed, debounced.id];
      for (const id of later) {
        const scheduled = await client.status(id);
        assert.deepEqual([scheduled?.status, scheduled?.group], ["scheduled", group], id);
      }
      await new Promise((resolve) => setTimeout(resolve, 600));
      // Due while the first still runs, each waits its group's turn, as a new job does.
      for (const id of later) {
        const held = await redis.getBuffer(`flotilla:{default}:id:${id}`);
        assert.ok(held !== null && held.subarray(0, 8).toString() === "grouped ", `${id}: ${held}`);
        const waiting = await client.status(id);
        assert.deepEqual([waiting?.status, waiting?.group], ["pending", group], id);
      }
      assert.equal((await client.status(first))?.status, "running", "the group's turn is still taken");
      for (const id of [first, ...later]) {
        assert.equal((await client.wait(id, { timeoutMs: 10_000 })).status, "completed", id);
      }
    });
  });

  test("a unique job of a group waits its turn holding its key", async () => {
    const { client, redis } = fleet;
    await oneAtATimePerGroup(redis, async () => {
      const group = freshName("node-group");
      const key = freshName("node-unique");
      const first = await client.enqueue("sleep", { ms: 1500 }, { group });
      const unique = await client.enqueueUnique(key, "sleep", { ms: 10 }, { group });
      assert.equal(unique.created, true);
      // Its record waits `pending` with no entry, and its id key holds its place in line.
      const waiting = await client.status(unique.id);
      assert.deepEqual([waiting?.status, waiting?.group], ["pending", group]);
      assert.equal(await redis.hget(`flotilla:{default}:job:${unique.id}`, "entry"), null);
      const held = await redis.getBuffer(`flotilla:{default}:id:${unique.id}`);
      assert.ok(held !== null, "its id key is there");
      const line = parseWaiting(held);
      assert.equal(line?.state, "grouped", String(held));
      assert.deepEqual([...(line?.fields.keys() ?? [])], ["id", "group", "created_at"]);
      assert.equal(line?.fields.get("id")?.toString(), unique.id);
      assert.equal(line?.fields.get("group")?.toString(), group);
      assert.match(line?.fields.get("created_at")?.toString() ?? "", /^\d+$/);
      // It holds its key while it waits: the same key answers its id.
      const again = await client.enqueueUnique(key, "sleep", { ms: 10 }, { group });
      assert.deepEqual(again, { id: unique.id, created: false });
      assert.equal((await client.wait(first, { timeoutMs: 10_000 })).status, "completed");
      assert.equal((await client.wait(unique.id, { timeoutMs: 10_000 })).status, "completed");
    });
  });

  test("a unique job of a group with a delay waits its time, then its turn, holding its key", async () => {
    const { client, redis } = fleet;
    await oneAtATimePerGroup(redis, async () => {
      const group = freshName("node-group");
      const key = freshName("node-unique");
      const first = await client.enqueue("sleep", { ms: 1500 }, { group });
      const started = await eventually(() => client.status(first), (status) => status?.status === "running", 5000);
      assert.equal(started?.status, "running");
      const unique = await client.enqueueUnique(key, "sleep", { ms: 10 }, { group, delayMs: 200 });
      assert.equal(unique.created, true);
      const scheduled = await client.status(unique.id);
      assert.deepEqual([scheduled?.status, scheduled?.group], ["scheduled", group]);
      assert.notEqual(await redis.zscore("flotilla:{default}:delayed", unique.id), null);
      // It holds its key while it waits for its time.
      assert.deepEqual(await client.enqueueUnique(key, "sleep", { ms: 10 }, { group, delayMs: 200 }), {
        id: unique.id,
        created: false,
    });
    await new Promise((resolve) => setTimeout(resolve, 600));
    // Due while the first still runs, it waits its group's turn as a new one does, still
    // holding its key.
    const waiting = await client.status(unique.id);
    assert.deepEqual([waiting?.status, waiting?.group], ["pending", group]);
    const held = await redis.getBuffer(`flotilla:{default}:id:${unique.id}`);
    assert.ok(held !== null && held.subarray(0, 8).toString() === "grouped ", String(held));
    assert.deepEqual(await client.enqueueUnique(key, "sleep", { ms: 10 }, { group }), { id: unique.id, created: false });
    assert.equal((await client.status(first))?.status, "running", "the group's turn is still taken");
    assert.equal((await client.wait(first, { timeoutMs: 10_000 })).status, "completed");
    assert.equal((await client.wait(unique.id, { timeoutMs: 10_000 })).status, "completed");
    });
  });
});
