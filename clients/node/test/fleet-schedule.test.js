// Enqueues jobs for later on a real fleet and checks they wait for their time, and that a past time runs now.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { completionsOf } from "../lib/views.js";
import { parseWaiting } from "../lib/waiting.js";
import { SKIP_WITHOUT_FLEET, freshName, useFleet } from "../test-support/fleet.js";

describe("scheduled jobs on a fleet", { skip: SKIP_WITHOUT_FLEET, concurrency: true }, () => {
  const fleet = useFleet();

  /**
   * What the id key of a job waiting in `later` holds: no record is written for it.
   * @param {string} id
   * @param {string} [queue]
   */
  async function waitingOf(id, queue = "default") {
    assert.equal(await fleet.redis.exists(`flotilla:{${queue}}:job:${id}`), 0, "no record while it waits");
    const waiting = parseWaiting((await fleet.redis.getBuffer(`flotilla:{${queue}}:id:${id}`)) ?? Buffer.alloc(0));
    assert.ok(waiting !== null, "its id key holds the job");
    return waiting;
  }

  // When a completed job began: a delayed job with an id runs without its record once due,
  // so its completion in `done`, which `done_ids` leads to once its id key went, tells
  // (completed at, less run_ms).
  async function startedAtOf(id) {
    assert.equal(await fleet.redis.exists(`flotilla:{default}:id:${id}`), 0, "no id key once completed");
    const since = await fleet.redis.zscore("flotilla:{default}:done_ids", id);
    assert.ok(since !== null, `${id} is not in done_ids`);
    const entries = await fleet.redis.xrangeBuffer("flotilla:{default}:done", `${since}-0`, "+", "COUNT", 1000);
    // An entry may hold a batch of completions; `run_ms` is left out when 0.
    for (const [doneId, flat] of entries) {
      const fields = completionsOf(flat).find((completion) => completion.get("id")?.toString() === id);
      if (fields) return Number(doneId.toString().split("-")[0]) - Number(fields.get("run_ms")?.toString() ?? "0");
    }
    assert.fail(`no completion of ${id} from ${since} on`);
  }

  test("enqueueIn: scheduled at first, and runs once its delay has passed, not before", async () => {
    const { client } = fleet;
    const sent = Date.now();
    const id = await client.enqueueIn(300, "sleep", { ms: 10 });
    const scheduled = await client.status(id);
    assert.equal(scheduled?.status, "scheduled");
    const runAt = Number(scheduled?.runAt);
    const createdAt = Number((await waitingOf(id)).fields.get("created_at"));
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
    const scheduled = await client.status(id);
    assert.equal(scheduled?.status, "scheduled");
    assert.equal(scheduled?.runAt, when.getTime());
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

  test("a delayed job waits in later with no record, its id key holding it", async () => {
    const { client, redis } = fleet;
    const queue = fleet.idle;
    const [seconds, micros] = await redis.time();
    const sent = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
    const id = await client.enqueueIn(60_000, "render", { n: 1 }, { queue, maxAttempts: 2 });
    const scheduled = await client.status(id, { queue });
    assert.ok(scheduled !== null);
    assert.equal(scheduled.status, "scheduled");
    assert.equal(scheduled.type, "render");
    assert.equal(scheduled.attempts, 0);
    assert.equal(scheduled.maxAttempts, 2);
    assert.deepEqual(scheduled.payload, { n: 1 });
    assert.equal(scheduled.nextRunAt, null);
    const waiting = await waitingOf(id, queue);
    assert.equal(waiting.state, "scheduled");
    const createdAt = Number(waiting.fields.get("created_at"));
    assert.ok(createdAt >= sent, `created at ${createdAt}, before it was sent at ${sent}`);
    assert.equal(scheduled.runAt, createdAt + 60_000);
    assert.equal(Number(await redis.zscore(`flotilla:{${queue}}:later`, id)), scheduled.runAt);
    // Enqueued again with its id, it is the same job, still waiting.
    assert.equal(await client.enqueueIn(1, "render", null, { queue, id }), id);
    assert.deepEqual(await client.status(id, { queue }), scheduled);
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
