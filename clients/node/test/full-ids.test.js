// Full ids (`<queue>:<entry id>` for a job without an id of its own, else the own id): how they are made, read back, and taken by `status` and `wait`; no Redis needed.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Client, WaitTimeoutError, fullId, parseFullId } from "../index.js";

/**
 * A stand-in for an ioredis connection on which no job exists: every queue has one
 * partition, and each key a status read touches is recorded.
 */
function emptyConnection() {
  /** @type {string[]} */
  const keys = [];
  const replies = { hgetallBuffer: {}, xrangeBuffer: [], xpending: null, getBuffer: null };
  const connection = {
    keys,
    defineCommand() {},
    /** @param {string} _hash @param {string} _field */
    hget: async (_hash, _field) => null,
    /** @param {string} key */
    zscore: async (key) => {
      keys.push(key);
      return null;
    },
    /** @param {string} key */
    xrangeBuffer: async (key) => {
      keys.push(key);
      return [];
    },
    multi() {
      /** @type {unknown[]} */
      const queued = [];
      const chain = new Proxy(
        {},
        {
          get(_target, name) {
            if (name === "exec") return async () => queued.map((reply) => [null, reply]);
            return (/** @type {string} */ key) => {
              keys.push(key);
              queued.push(replies[/** @type {keyof typeof replies} */ (name)]);
              return chain;
            };
          },
        },
      );
      return chain;
    },
  };
  return /** @type {typeof connection & import("ioredis").Redis} */ (/** @type {unknown} */ (connection));
}

describe("a full id", () => {
  test("names a job without an id of its own with its queue, and an own id as it is", () => {
    assert.equal(fullId("mail", "1700000000000-0"), "mail:1700000000000-0");
    assert.equal(fullId("mail#2", "1-0"), "mail#2:1-0");
    assert.equal(fullId("a:b", "0-1"), "a:b:0-1");
    assert.equal(fullId("mail", "order-17"), "order-17");
  });

  test("reads back as its queue and entry id, split at the last colon", () => {
    for (const queue of ["mail", "a:b", "mail#2", "x.y", "default"]) {
      assert.deepEqual(parseFullId(fullId(queue, "1700000000000-3")), { queue, id: "1700000000000-3" });
    }
  });

  test("is told from ids within some queue", () => {
    for (const bare of ["order-17", "1700000000000-0", "order:17", ":1-0", "mail:1-", "mail:1-2-3", "1-0:x", "mail:"]) {
      assert.deepEqual(parseFullId(bare), { queue: null, id: bare }, bare);
    }
  });
});

describe("status and wait", () => {
  /** @type {[string, string | undefined, string][]} given id, queue option, record key read */
  const cases = [
    // A full id names its queue: the queue may be left out, or given as the same one.
    ["mail:1700000000000-0", undefined, "flotilla:{mail}:job:1700000000000-0"],
    ["mail:1700000000000-0", "mail", "flotilla:{mail}:job:1700000000000-0"],
    ["a:b:0-1", undefined, "flotilla:{a:b}:job:0-1"],
    // A partition's full id, with its queue's name given, is looked for in the partition.
    ["mail#2:1-0", "mail", "flotilla:{mail#2}:job:1-0"],
    // Any other id is one within the queue given, "default" when left out.
    ["1700000000000-0", undefined, "flotilla:{default}:job:1700000000000-0"],
    ["1700000000000-0", "mail", "flotilla:{mail}:job:1700000000000-0"],
    ["order:17", undefined, "flotilla:{default}:job:order:17"],
    ["order-17", "mail", "flotilla:{mail}:job:order-17"],
  ];
  for (const [given, queue, record] of cases) {
    test(`status(${given}, { queue: ${queue} }) looks at ${record}`, async () => {
      const connection = emptyConnection();
      const client = new Client(connection);
      assert.equal(await client.status(given, queue === undefined ? {} : { queue }), null);
      assert.equal(connection.keys[0], record);
      const [, tag] = /** @type {RegExpMatchArray} */ (record.match(/^flotilla:(\{.*\}):/));
      for (const key of connection.keys) assert.ok(key.startsWith(`flotilla:${tag}:`), key);
    });
  }

  test("a full id of another queue is not found in this one, and nothing is read", async () => {
    for (const [given, queue] of [
      ["mail:1-0", "sms"],
      ["mail:1-0", "mail#2"],
      ["mail#2:1-0", "sms"],
    ]) {
      const connection = emptyConnection();
      const client = new Client(connection);
      assert.equal(await client.status(given, { queue }), null, `${given} in ${queue}`);
      assert.deepEqual(connection.keys, []);
    }
  });

  test("wait takes a full id as status does", async () => {
    const connection = emptyConnection();
    const client = new Client(connection);
    await assert.rejects(client.wait("mail:1700000000000-0", { timeoutMs: 0 }), (error) => {
      assert.ok(error instanceof WaitTimeoutError, String(error));
      assert.equal(error.id, "mail:1700000000000-0");
      return true;
    });
    assert.equal(connection.keys[0], "flotilla:{mail}:job:1700000000000-0");
    await assert.rejects(client.wait("mail:1-0", { queue: "sms", timeoutMs: 0 }), WaitTimeoutError);
  });
});
