// Jobs of a group on a real fleet: with the queue's group window at 1 they wait their turn, pending, and all complete.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { SKIP_WITHOUT_FLEET, freshName, useFleet } from "../test-support/fleet.js";

describe("groups on a fleet", { skip: SKIP_WITHOUT_FLEET }, () => {
  const fleet = useFleet();

  test("jobs of a group wait their turn and all complete", async () => {
    const { client, redis } = fleet;
    // One job of a group at a time on `default`: only jobs of a group heed the limit, and
    // no other test enqueues one, so tests running beside this one are not affected.
    const limit = "flotilla:{default}:group_limit";
    await redis.hset(limit, "concurrency", "1");
    try {
      const group = freshName("node-group");
      const first = await client.enqueue("sleep", { ms: 500 }, { group });
      const second = await client.enqueue("sleep", { ms: 10 }, { group });
      const third = await client.enqueue("sleep", { ms: 10 }, { group, id: freshName("node-grouped") });
      const held = await redis.getBuffer(`flotilla:{default}:id:${second}`);
      assert.ok(held !== null && held.subarray(0, 8).toString() === "grouped ", String(held));
      assert.equal((await client.status(second))?.status, "pending");
      for (const id of [first, second, third]) {
        assert.equal((await client.wait(id, { timeoutMs: 10_000 })).status, "completed", id);
      }
    } finally {
      await redis.hdel(limit, "concurrency");
    }
  });
});
