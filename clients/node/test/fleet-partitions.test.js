// A partitioned queue through the client: jobs spread as the protocol places them, and are found by the queue's name.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { InvalidJobError } from "../index.js";
import { partitionFor } from "../lib/partitions.js";
import { SKIP_WITHOUT_FLEET, dropQueue, idleQueue, useFleet } from "../test-support/fleet.js";

describe("a partitioned queue", { skip: SKIP_WITHOUT_FLEET }, () => {
  const fleet = useFleet();

  test("jobs spread over the partitions and are found by the queue's name", async () => {
    const { client, redis } = fleet;
    const queue = idleQueue();
    const partitions = [queue, `${queue}#1`, `${queue}#2`, `${queue}#3`];
    const stream = (/** @type {string} */ p) => `flotilla:{${p}}:q`;
    await redis.hset("flotilla:{global}:partitions", queue, "4");
    try {
      // A job without an id gets one (entry ids are per stream, so two partitions could
      // hand out the same), and goes where FNV-1a of it says: its id key is there, naming
      // its entry (a job to run now with an id has no record).
      const fast = [];
      for (let i = 0; i < 40; i++) fast.push(await client.enqueue("noop", { i }, { queue }));
      for (const id of fast) {
        const partition = partitions[partitionFor(id, 4)];
        const entry = await redis.get(`flotilla:{${partition}}:id:${id}`);
        assert.notEqual(entry, null, id);
        assert.equal((await redis.xrange(stream(partition), String(entry), String(entry))).length, 1, id);
        assert.equal(await redis.exists(`flotilla:{${partition}}:job:${id}`), 0, id);
      }
      assert.ok(new Set(fast.map((id) => partitionFor(id, 4))).size > 1);
      const lengths = await Promise.all(partitions.map((p) => redis.xlen(stream(p))));

      // A job with an id goes where FNV-1a of the id says (0x657aba5f % 4 = 3), and so does
      // its second enqueue, which meets the id key there and adds nothing.
      assert.equal(await client.enqueue("noop", null, { queue, id: "report-7" }), "report-7");
      assert.equal(await client.enqueue("noop", null, { queue, id: "report-7" }), "report-7");
      assert.equal(await redis.exists(`flotilla:{${queue}#3}:id:report-7`), 1);
      assert.equal(await redis.xlen(stream(`${queue}#3`)), lengths[3] + 1);

      // A unique key places its job by the key (0xf5537974 % 4 = 0), whatever the id.
      const first = await client.enqueueUnique("user-1", "noop", null, { queue });
      const again = await client.enqueueUnique("user-1", "noop", null, { queue });
      assert.deepEqual(again, { id: first.id, created: false });
      assert.equal(await redis.exists(`flotilla:{${queue}}:unique:user-1`), 1);

      // Each is found by the queue's name, and reports the partition it is in.
      for (const id of [...fast, "report-7", first.id]) {
        const found = await client.status(id, { queue });
        assert.equal(found?.status, "pending", id);
        assert.ok(partitions.includes(String(found?.queue)), id);
      }
      assert.equal((await client.status("report-7", { queue }))?.queue, `${queue}#3`);

      // A partition named directly is used when the queue has it, refused past the count.
      await client.enqueue("noop", null, { queue: `${queue}#2` });
      assert.equal(await redis.xlen(stream(`${queue}#2`)), lengths[2] + 1);
      await assert.rejects(client.enqueue("noop", null, { queue: `${queue}#4` }), (error) => {
        assert.ok(error instanceof InvalidJobError);
        assert.match(error.message, /partition 4/);
        return true;
      });
      assert.equal(await redis.xlen(stream(`${queue}#4`)), 0);
    } finally {
      await redis.hdel("flotilla:{global}:partitions", queue);
      for (const p of [...partitions, `${queue}#4`]) await dropQueue(redis, p);
    }
  });
});
