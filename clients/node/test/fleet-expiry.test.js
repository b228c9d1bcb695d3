// Jobs with an expiry on a real fleet: it is written with the job, and a job not started by then ends expired, unrun.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { parseWaiting } from "../lib/waiting.js";
import { SKIP_WITHOUT_FLEET, completionsOf, fieldsOf, freshName, useFleet } from "../test-support/fleet.js";

describe("expiry on a fleet", { skip: SKIP_WITHOUT_FLEET, concurrency: true }, () => {
  const fleet = useFleet();
  const idle = fleet.idle;

  test("an expiry is written with the job, on the fast path and through the script", async () => {
    const { client, redis } = fleet;
    const at = 1_900_000_000_000;
    const fast = await client.enqueue("noop", null, { queue: idle, expiresAtMs: at });
    const [[, flat]] = await redis.xrange(`flotilla:{${idle}}:q`, fast, fast);
    assert.equal(fieldsOf(flat).expires_at, String(at), "the fast path's entry carries it");
    const own = await client.enqueue("noop", null, { queue: idle, id: freshName("node-expiring"), expiresAtMs: at });
    const later = await client.enqueueIn(60_000, "noop", null, { queue: idle, expiresAtMs: at });
    const waiting = parseWaiting((await redis.getBuffer(`flotilla:{${idle}}:id:${later}`)) ?? Buffer.alloc(0));
    assert.equal(waiting?.fields.get("expires_at")?.toString(), String(at), "the entry it becomes carries it");
    const { id: held } = await client.enqueueUnique(freshName("node-expiring"), "noop", null, {
      queue: idle,
      expiresAtMs: at,
    });
    assert.equal(await redis.hget(`flotilla:{${idle}}:job:${held}`, "expires_at"), String(at), "its record");
    for (const [id, state] of [[fast, "pending"], [own, "pending"], [later, "scheduled"], [held, "pending"]]) {
      const status = await client.status(id, { queue: idle });
      assert.deepEqual([status?.status, status?.expiresAt], [state, at], id);
    }
    // From now, by this process's clock.
    const before = Date.now();
    const soon = await client.enqueue("noop", null, { queue: idle, expiresInMs: 60_000 });
    const after = Date.now();
    const expiresAt = Number((await client.status(soon, { queue: idle }))?.expiresAt);
    assert.ok(before + 60_000 <= expiresAt && expiresAt <= after + 60_000, `expires at ${expiresAt}`);
  });

  test("a job due after its expiry ends expired, never having run", async () => {
    const { client, redis } = fleet;
    const key = freshName("node-expiring");
    // Each waits past its expiry; once due, no attempt starts.
    const later = await client.enqueueIn(600, "noop", null, { id: freshName("node-expiring"), expiresInMs: 200 });
    const { id: held } = await client.enqueueUnique(key, "noop", null, { delayMs: 600, expiresInMs: 200 });
    const lasting = await client.enqueueIn(200, "noop", null, { expiresInMs: 60_000 });
    assert.equal((await client.status(later))?.status, "scheduled");
    const ran = await client.wait(lasting, { timeoutMs: 5000 });
    assert.equal(ran.status, "completed", "an expiry ahead changes nothing");
    for (const id of [later, held]) {
      const status = await client.wait(id, { timeoutMs: 5000 });
      assert.equal(status.status, "expired", id);
      assert.equal(status.attempts, 0, `${id} never started`);
      assert.ok(status.expiresAt !== null, `${id} keeps its expiry`);
      assert.equal(await completionsOf(redis, "default", id), 0, `${id} never ran`);
      assert.notEqual(await redis.zscore("flotilla:{default}:idx:expired", id), null, `${id} is in the expired index`);
    }
    assert.equal(await redis.exists(`flotilla:{default}:unique:${key}`), 0, "an expired job lets go of its unique key");
  });

  test("a retry due after the expiry expires instead of running", async () => {
    const { client, redis } = fleet;
    // The first attempt fails; its retry would be due after the expiry.
    const id = await client.enqueue("fail", { times: 1 }, {
      id: freshName("node-late"),
      backoff: "fixed:1500",
      expiresInMs: 1000,
    });
    const status = await client.wait(id, { timeoutMs: 5000 });
    assert.equal(status.status, "expired");
    assert.equal(status.attempts, 1, "the first attempt ran, the retry never did");
    assert.match(status.error ?? "", /^planned failure on attempt 1/);
    assert.equal(await completionsOf(redis, "default", id), 0);
  });
});
