// Jobs that wait for other jobs (protocol 2.19) on a real fleet: flows, `after`, what a refusal leaves, and how a waiting job reads.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { InvalidJobError, WaitTimeoutError, fullId } from "../index.js";
import { SKIP_WITHOUT_FLEET, dropQueue, freshName, idleQueue, useFleet } from "../test-support/fleet.js";

/**
 * Every key of `queue`, sorted.
 * @param {import("ioredis").Redis} redis
 * @param {string} queue
 */
async function queueKeys(redis, queue) {
  return (await redis.keys(`flotilla:{${queue}}:*`)).sort();
}

describe("flows on a fleet", { skip: SKIP_WITHOUT_FLEET, concurrency: true }, () => {
  const fleet = useFleet();
  const idle = fleet.idle;

  /**
   * Waits for job `id` to complete, and returns its status.
   * @param {string} id
   * @param {string} [queue]
   */
  async function completed(id, queue = "default") {
    const status = await fleet.client.wait(id, { queue, timeoutMs: 10_000 });
    assert.equal(status.status, "completed", JSON.stringify(status));
    return status;
  }

  /**
   * When job `id` completed, as its `done` entry says: the queue's completions are written
   * in the order they happen, so their entry ids order them.
   * @param {string} id
   */
  async function completionId(id) {
    for (const [entryId, flat] of await fleet.redis.xrange("flotilla:{default}:done", "-", "+")) {
      for (let i = 0; i + 1 < flat.length; i += 2) {
        if (flat[i] === "id" && flat[i + 1] === id) return entryId;
      }
    }
    assert.fail(`no completion of ${id}`);
  }

  /** @param {string} a @param {string} b whether entry id `a` comes before `b` */
  function before(a, b) {
    const [am, as] = a.split("-").map(BigInt);
    const [bm, bs] = b.split("-").map(BigInt);
    return am < bm || (am === bm && as < bs);
  }

  test("a diamond's last job runs only after both its parents completed", async () => {
    const { client } = fleet;
    const [a, b, c, d] = ["a", "b", "c", "d"].map((step) => freshName(`node-${step}`));
    const flowId = freshName("node-diamond");
    const created = await client.enqueueFlow(
      [
        { type: "sleep", payload: { ms: 50 }, id: a },
        { type: "sleep", payload: { ms: 800 }, id: b, after: [a] },
        { type: "sleep", payload: { ms: 20 }, id: c, after: [a] },
        { type: "noop", id: d, after: [b, c] },
      ],
      { flowId },
    );
    assert.deepEqual(
      created.map(({ id, queue, outcome }) => [id, queue, outcome]),
      [
        [a, "default", "created"],
        [b, "default", "waiting"],
        [c, "default", "waiting"],
        [d, "default", "waiting"],
      ],
    );
    // While `b` runs, `c` has completed and `d` still waits, for `b` alone.
    await completed(c);
    const runningB = await client.status(b);
    assert.ok(runningB?.status === "pending" || runningB?.status === "running", JSON.stringify(runningB));
    assert.equal((await client.status(d))?.status, "waiting");
    const waiting = await client.dependencies(d);
    assert.deepEqual(
      [waiting?.waiting, waiting?.edges, waiting?.left, waiting?.flowId, waiting?.flowQueue],
      [true, 2, 1, flowId, "default"],
    );
    assert.deepEqual(
      waiting?.parents.map((p) => [p.id, p.policy, p.outcome, p.result]),
      [
        [b, "cancel", null, null],
        [c, "cancel", "completed", { slept_ms: 20 }],
      ],
    );

    await completed(d);
    const [doneA, doneB, doneC, doneD] = await Promise.all([a, b, c, d].map(completionId));
    assert.ok(before(doneA, doneC) && before(doneC, doneB) && before(doneB, doneD), [doneA, doneB, doneC, doneD].join(" "));
    // Each child was let go by its parent's completion, and holds what it ended with.
    for (const child of [b, c]) {
      const released = await client.dependencies(child);
      assert.equal(released?.waiting, false);
      assert.deepEqual(
        released?.parents.map((p) => [p.id, p.outcome, p.result]),
        [[a, "completed", { slept_ms: 50 }]],
      );
    }
    const after = await client.dependencies(d);
    assert.equal(after?.waiting, false);
    assert.ok((after?.releasedAt ?? Infinity) <= Number(doneD.split("-")[0]));
    assert.deepEqual(
      after?.parents.map((p) => [p.id, p.outcome, p.result]),
      [
        [b, "completed", { slept_ms: 800 }],
        [c, "completed", { slept_ms: 20 }],
      ],
    );
  });

  test("a job after existing jobs waits for them", async () => {
    const { client, redis } = fleet;
    const own = await client.enqueue("sleep", { ms: 300 }, { id: freshName("node-parent") });
    const fast = await client.enqueue("sleep", { ms: 200 });
    const child = await client.enqueue("noop", { n: 1 }, { after: [{ queue: "default", id: own }, fullId("default", fast)] });
    const waiting = await client.status(child);
    assert.deepEqual(
      [waiting?.status, waiting?.type, waiting?.payload, waiting?.attempts, waiting?.maxAttempts],
      ["waiting", "noop", { n: 1 }, 0, 3],
    );
    assert.equal(await redis.get(`flotilla:{default}:id:${child}`), "waiting");
    assert.notEqual(await redis.zscore("flotilla:{default}:waiting", child), null);
    await completed(child);
    const [doneOwn, doneFast, doneChild] = await Promise.all([own, fast, child].map(completionId));
    assert.ok(before(doneOwn, doneChild) && before(doneFast, doneChild));
    const deps = await client.dependencies(child);
    assert.equal(deps?.flowId, null, "a job enqueued after others is in no named flow");
    assert.deepEqual(
      deps?.parents.map((p) => [p.queue, p.id, p.result]),
      [
        ["default", own, { slept_ms: 300 }],
        ["default", fast, { slept_ms: 200 }],
      ],
    );
    assert.equal(await redis.zscore("flotilla:{default}:waiting", child), null);

    // A delay counts from when the last parent is done, and a parent that completed
    // before counts as done: its child is enqueued at once.
    const later = await client.enqueueIn(200, "noop", null, { after: [own] });
    await completed(later);
  });

  test("a flow may name the jobs of an earlier one", async () => {
    const { client } = fleet;
    const [first] = await client.enqueueFlow([{ type: "sleep", payload: { ms: 100 } }]);
    const [second] = await client.enqueueFlow([{ type: "noop", after: [first] }]);
    assert.deepEqual([first.outcome, second.outcome], ["created", "waiting"]);
    await completed(second.id);
    assert.ok(before(await completionId(first.id), await completionId(second.id)));
  });

  test("a dead parent cancels its child by default and runs it under `run`", async () => {
    const { client } = fleet;
    const [parent, cancelled, anyway] = ["doomed", "cancelled", "anyway"].map((name) => freshName(`node-${name}`));
    await client.enqueueFlow([
      { type: "fail", payload: { times: -1 }, id: parent, maxAttempts: 1 },
      { type: "noop", id: cancelled, after: [parent] },
      { type: "noop", id: anyway, after: [{ id: parent, policy: "run" }] },
    ]);
    assert.equal((await client.wait(parent, { timeoutMs: 10_000 })).status, "dead");
    const gone = await client.wait(cancelled, { timeoutMs: 10_000 });
    assert.deepEqual([gone.status, gone.attempts, gone.error], ["cancelled", 0, `parent default ${parent} dead`]);
    await completed(anyway);
    const deps = await client.dependencies(anyway);
    assert.deepEqual(
      deps?.parents.map((p) => [p.id, p.policy, p.outcome]),
      [[parent, "run", "dead"]],
    );
  });

  test("a waiting job reads as waiting until its parent ends", async () => {
    const { client, redis } = fleet;
    // No worker serves the idle queue: the parent never runs, so its child waits.
    const parent = await client.enqueue("noop", null, { queue: idle, id: freshName("node-parent") });
    const child = await client.enqueue("render", { page: 3 }, {
      queue: idle,
      maxAttempts: 7,
      expiresInMs: 600_000,
      group: "account-42",
      after: [{ queue: idle, id: parent, policy: "run" }],
    });
    const waiting = await client.status(child, { queue: idle });
    assert.deepEqual(
      [waiting?.id, waiting?.queue, waiting?.status, waiting?.type, waiting?.payload, waiting?.maxAttempts, waiting?.group],
      [child, idle, "waiting", "render", { page: 3 }, 7, "account-42"],
    );
    assert.ok(waiting?.expiresAt !== null && waiting?.runAt === null);
    await assert.rejects(client.wait(child, { queue: idle, timeoutMs: 200 }), (error) => {
      assert.ok(error instanceof WaitTimeoutError);
      assert.equal(error.lastStatus, "waiting");
      return true;
    });
    const deps = await client.dependencies(child, { queue: idle });
    assert.deepEqual([deps?.waiting, deps?.edges, deps?.left, deps?.blocked], [true, 1, 1, 0]);
    assert.deepEqual(
      deps?.parents.map((p) => [p.queue, p.id, p.policy, p.outcome]),
      [[idle, parent, "run", null]],
    );
    assert.deepEqual(await redis.lrange(`flotilla:{${idle}}:hook:${parent}`, 0, -1), [`run ${idle} ${child}`]);
    assert.equal(await client.dependencies(parent, { queue: idle }), null, "a job with no parents has no dependencies");
  });

  test("a cycle is refused and nothing is written", async () => {
    const { client, redis } = fleet;
    const queue = idleQueue();
    try {
      const running = await client.enqueue("sleep", { ms: 500 }, { id: freshName("node-running") });
      const [x, y, z] = ["x", "y", "z"].map((step) => freshName(`node-${step}`));
      await assert.rejects(
        client.enqueueFlow([
          { type: "noop", id: x, queue, after: [z, { queue: "default", id: running }] },
          { type: "noop", id: y, queue, after: [x] },
          { type: "noop", id: z, queue, after: [y] },
        ]),
        (error) => {
          assert.ok(error instanceof InvalidJobError);
          assert.equal(error.field, "flow");
          assert.match(error.message, /^invalid flow: BAD_FLOW the flow has a cycle through job /);
          return true;
        },
      );
      assert.deepEqual(await queueKeys(redis, queue), []);
      assert.equal(await redis.exists(`flotilla:{default}:hook:${running}`), 0);
      assert.equal(await redis.sismember("flotilla:{default}:hooked", running), 0);
      for (const id of [x, y, z]) assert.equal(await client.status(id, { queue }), null);
      // Without the edge that closes the cycle, it is created.
      const created = await client.enqueueFlow([
        { type: "noop", id: x, queue, after: [{ queue: "default", id: running }] },
        { type: "noop", id: y, queue, after: [x] },
      ]);
      assert.deepEqual(
        created.map((job) => job.outcome),
        ["waiting", "waiting"],
      );
    } finally {
      await dropQueue(redis, queue);
    }
  });

  test("an unknown parent is refused and nothing is written", async () => {
    const { client, redis } = fleet;
    const queue = idleQueue();
    try {
      const [nobody, child] = ["nobody", "child"].map((name) => freshName(`node-${name}`));
      await assert.rejects(client.enqueue("noop", null, { queue, id: child, after: [{ queue: "default", id: nobody }] }), (error) => {
        assert.ok(error instanceof InvalidJobError);
        assert.equal(error.field, "after");
        assert.equal(error.message, `invalid after: BAD_FLOW job ${child}: parent ${nobody} is not known in queue default`);
        return true;
      });
      await assert.rejects(
        client.enqueueFlow([
          { type: "noop", queue, id: child },
          { type: "noop", after: [{ queue: "default", id: nobody }] },
        ]),
        new RegExp(`parent ${nobody} is not known in queue default`),
      );
      assert.deepEqual(await queueKeys(redis, queue), []);
      assert.equal(await client.status(child, { queue }), null);
    } finally {
      await dropQueue(redis, queue);
    }
  });

  test("an id taken, or twice in a flow, is refused", async () => {
    const { client, redis } = fleet;
    const queue = idleQueue();
    try {
      const taken = await client.enqueue("noop", null, { queue, id: freshName("node-taken") });
      const keys = await queueKeys(redis, queue);
      await assert.rejects(client.enqueueFlow([{ type: "noop", queue, id: taken }]), new RegExp(`job id ${taken} is taken in queue ${queue}`));
      const twice = freshName("node-twice");
      await assert.rejects(
        client.enqueueFlow([
          { type: "noop", queue, id: twice },
          { type: "noop", queue, id: twice },
        ]),
        new RegExp(`job id ${twice} is in the flow twice`),
      );
      assert.deepEqual(await queueKeys(redis, queue), keys);
    } finally {
      await dropQueue(redis, queue);
    }
  });

  test("a flow on a partitioned queue names each parent in its partition", async () => {
    const { client, redis } = fleet;
    const queue = idleQueue();
    const partitions = [queue, `${queue}#1`, `${queue}#2`, `${queue}#3`];
    await redis.hset("flotilla:{global}:partitions", queue, "4");
    try {
      // The parent is found in the partition that knows its id; `c` names `a` in the
      // partition `a` goes to.
      const parent = await client.enqueue("noop", null, { queue, id: freshName("node-parent") });
      const aId = freshName("node-a");
      const [a, b, c] = await client.enqueueFlow([
        { type: "noop", queue, id: aId, after: [{ queue, id: parent }] },
        { type: "noop", queue, id: freshName("node-b") },
        { type: "noop", queue, id: freshName("node-c"), after: [aId] },
      ]);
      for (const job of [a, b, c]) assert.ok(partitions.includes(job.queue), job.queue);
      assert.deepEqual([a.outcome, b.outcome, c.outcome], ["waiting", "created", "waiting"]);
      const child = await client.enqueue("noop", null, { queue, after: [a, { queue, id: b.id }] });
      assert.equal((await client.status(child, { queue }))?.status, "waiting");
      const deps = await client.dependencies(child, { queue });
      assert.deepEqual([deps?.edges, deps?.left], [2, 2]);
      const hooks = [];
      for (const partition of partitions) {
        if (await redis.exists(`flotilla:{${partition}}:hook:${a.id}`)) hooks.push(partition);
      }
      assert.deepEqual(hooks, [a.queue], "the edge is kept where its parent is");
    } finally {
      await redis.hdel("flotilla:{global}:partitions", queue);
      for (const partition of partitions) await dropQueue(redis, partition);
    }
  });
});
