// Checks that bad jobs are refused before anything is written, each error naming its field; no Redis needed.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { Client, InvalidJobError } from "../index.js";
import {
  JOB_ID_RULE,
  checkBackoff,
  checkJobId,
  checkMaxAttempts,
  checkName,
  checkTimeoutMs,
  MAX_RUN_AT_MS,
  encodePayload,
  toExpiresAtMs,
  toRunAtMs,
} from "../lib/validate.js";

/**
 * A stand-in for an ioredis connection that records every command, so a test can show
 * that a refused job wrote nothing.
 */
function recordingConnection() {
  /** @type {string[]} */
  const calls = [];
  const connection = {
    calls,
    /** @param {string} name */
    defineCommand(name) {
      // @ts-ignore: the command is added the way ioredis adds it
      connection[name] = async () => calls.push(name);
    },
    xadd: async () => calls.push("xadd"),
    sadd: async () => calls.push("sadd"),
  };
  // Only the commands the client uses are there; it is typed as a connection for the calls.
  return /** @type {typeof connection & import("ioredis").Redis} */ (/** @type {unknown} */ (connection));
}

/**
 * Asserts that `promise` rejects with an InvalidJobError naming `field`.
 * @param {Promise<unknown>} promise
 * @param {string} field
 */
async function refusedFor(promise, field) {
  await assert.rejects(promise, (error) => {
    assert.ok(error instanceof InvalidJobError, `expected InvalidJobError, got ${error}`);
    assert.equal(error.field, field);
    assert.match(error.message, new RegExp(`^invalid ${field}: `));
    assert.doesNotMatch(error.message, /[\r\n]/, "a refused value is shown escaped");
    return true;
  });
}

describe("names", () => {
  test("refuses empty, spaced, braced, control-character and over-long names", () => {
    const bad = [
      "",
      "a b",
      "tab\there",
      "no\u00a0break",
      "{queue}",
      "a}",
      "line\nbreak",
      "cr\r",
      "\u007f",
      "x".repeat(257),
      "\u00e9".repeat(129), // 129 characters, but 258 bytes
      "lone \ud800 half",
      42,
      null,
    ];
    for (const name of bad) {
      assert.throws(() => checkName("type", name), InvalidJobError, JSON.stringify(name));
    }
  });

  test("accepts printable names up to 256 bytes", () => {
    for (const name of ["send_email", "01H-ab.c:d@e", "x".repeat(256), "\u00e9".repeat(128), "emoji-\u{1F680}"]) {
      assert.equal(checkName("type", name), name);
    }
  });

  test("each name is checked under its own name", async () => {
    const client = new Client(recordingConnection());
    await refusedFor(client.enqueue("has space", {}), "type");
    await refusedFor(client.enqueue("noop", {}, { queue: "{default}" }), "queue");
    await refusedFor(client.enqueue("noop", {}, { id: "a\nb" }), "id");
    await refusedFor(client.enqueueUnique("", "noop", {}), "uniqueKey");
    await refusedFor(client.status("a b"), "id");
    await refusedFor(client.status("1-1", { queue: "" }), "queue");
  });
});

describe("own ids", () => {
  test("are names of any form but an entry id's or a full id's", () => {
    for (const id of ["order:17", "mail:1-2-3", "welcome-42", "1-0:x", "a1-2", "nightly@1700000000000"]) {
      assert.equal(checkJobId(id), id);
    }
  });

  test("may not be an entry id nor end in :<entry id>, which name jobs without an id of their own", () => {
    for (const id of ["1700000000000-0", "0-1", "mail:1700000000000-0", "a:b:0-1", ":1-0", "mail#2:5-5"]) {
      assert.throws(
        () => checkJobId(id),
        (error) => {
          assert.ok(error instanceof InvalidJobError, String(error));
          assert.equal(error.field, "id");
          assert.ok(error.message.includes(JOB_ID_RULE), error.message);
          return true;
        },
        id,
      );
    }
  });

  test("are refused under the protocol's rule text", () => {
    assert.equal(
      JOB_ID_RULE,
      "1-256 printable characters without spaces, braces or control characters, and not of " +
        "the form <digits>-<digits> or <queue>:<digits>-<digits>: those are a stream entry id " +
        "and the full id of one, which name the jobs that have no id of their own",
    );
    assert.throws(() => checkJobId("a b"), { field: "id", message: /full id of one/ });
  });

  test("the client refuses a full id's form before writing anything", async () => {
    const connection = recordingConnection();
    const client = new Client(connection);
    await refusedFor(client.enqueue("noop", {}, { id: "mail:1700000000000-0" }), "id");
    await refusedFor(client.enqueueIn(5, "noop", {}, { id: "a:b:0-1" }), "id");
    assert.deepEqual(connection.calls, []);
  });
});

describe("numbers and policies", () => {
  test("maxAttempts is a whole number from 1 to 10000", () => {
    assert.equal(checkMaxAttempts(1), 1);
    assert.equal(checkMaxAttempts(10000), 10000);
    for (const value of [0, 10001, 1.5, -1, "3", NaN]) {
      assert.throws(() => checkMaxAttempts(value), { name: "InvalidJobError", field: "maxAttempts" });
    }
  });

  test("timeoutMs is at least 1 ms: there is no 'no timeout'", () => {
    assert.equal(checkTimeoutMs(1), 1);
    for (const value of [0, -5, 2.5, Infinity, "1000"]) {
      assert.throws(() => checkTimeoutMs(value), { name: "InvalidJobError", field: "timeoutMs" });
    }
  });

  test("backoff takes the three wire forms", () => {
    for (const value of ["fixed:50", "fixed:0", "exponential:1000:600000", "list:1000", "list:1,20,300"]) {
      assert.equal(checkBackoff(value), value);
    }
    for (const value of ["fixed", "fixed:", "fixed:-1", "fixed:1.5", " fixed:1", "linear:5", "exponential:1000", "list:", "list:1,,2", "list:1,", 50]) {
      assert.throws(() => checkBackoff(value), { name: "InvalidJobError", field: "backoff" });
    }
  });

  test("a run time is a valid Date or whole ms since 1970", () => {
    const at = new Date("2030-01-02T03:04:05Z");
    assert.equal(toRunAtMs(at), at.getTime());
    assert.equal(toRunAtMs(0), 0);
    for (const value of [new Date("not a date"), -1, 1.5, "2030-01-01"]) {
      assert.throws(() => toRunAtMs(value), { name: "InvalidJobError", field: "runAt" });
    }
  });

  test("the client refuses bad options before writing anything", async () => {
    const connection = recordingConnection();
    const client = new Client(connection);
    await refusedFor(client.enqueue("noop", {}, { maxAttempts: 0 }), "maxAttempts");
    await refusedFor(client.enqueue("noop", {}, { timeoutMs: 0 }), "timeoutMs");
    await refusedFor(client.enqueue("noop", {}, { backoff: "sometimes" }), "backoff");
    await refusedFor(client.enqueueIn(-1, "noop", {}), "delayMs");
    await refusedFor(client.enqueueIn(1.5, "noop", {}), "delayMs");
    await refusedFor(client.enqueueAt(new Date(Number.NaN), "noop", {}), "runAt");
    await refusedFor(client.enqueueUnique("k", "noop", {}, { ttlMs: 0 }), "ttlMs");
    await refusedFor(client.enqueueUnique("k", "noop", {}, { delayMs: -5 }), "delayMs");
    // @ts-expect-error: a flag, not a duration
    await refusedFor(client.enqueueUnique("k", "noop", {}, { holdForTtl: 1000 }), "holdForTtl");
    await refusedFor(client.enqueue("noop", {}, { expiresInMs: 0 }), "expiresInMs");
    await refusedFor(client.enqueue("noop", {}, { id: "own", expiresAtMs: 0 }), "expiresAtMs");
    await refusedFor(client.enqueueIn(5, "noop", {}, { expiresInMs: 1.5 }), "expiresInMs");
    await refusedFor(client.enqueueAt(1_900_000_000_000, "noop", {}, { expiresAtMs: MAX_RUN_AT_MS + 1 }), "expiresAtMs");
    await refusedFor(client.enqueueUnique("k", "noop", {}, { expiresInMs: -1 }), "expiresInMs");
    // @ts-expect-error: ms since the epoch, not a Date
    await refusedFor(client.enqueueDebounced("k", "noop", {}, { delayMs: 5, expiresAtMs: new Date() }), "expiresAtMs");
    await refusedFor(client.enqueue("noop", {}, { expiresInMs: 1000, expiresAtMs: 1_900_000_000_000 }), "expiresAtMs");
    await refusedFor(client.enqueue("noop", {}, { group: "" }), "group");
    await refusedFor(client.enqueue("noop", {}, { group: "a group" }), "group");
    await refusedFor(client.enqueue("noop", {}, { group: "a{b}" }), "group");
    await refusedFor(client.enqueue("noop", {}, { group: "x".repeat(257) }), "group");
    await refusedFor(client.enqueueIn(5, "noop", {}, { group: "a group" }), "group");
    await refusedFor(client.enqueueAt(1_900_000_000_000, "noop", {}, { group: "" }), "group");
    await refusedFor(client.enqueueDebounced("k", "noop", {}, { delayMs: 5, group: "a{b}" }), "group");
    await refusedFor(client.enqueueUnique("k", "noop", {}, { group: "a group" }), "group");
    assert.deepEqual(connection.calls, []);
  });

  test("an expiry is a time, counted from this process's clock for expiresInMs", () => {
    const now = 1_700_000_000_000;
    assert.equal(toExpiresAtMs(undefined, undefined, now), undefined, "no expiry: the job never expires");
    assert.equal(toExpiresAtMs(60_000, undefined, now), 1_700_000_060_000);
    assert.equal(toExpiresAtMs(undefined, 1_800_000_000_000, now), 1_800_000_000_000);
    assert.equal(toExpiresAtMs(undefined, 1, now), 1, "a time already past is the caller's to give");
    assert.equal(toExpiresAtMs(undefined, MAX_RUN_AT_MS, now), MAX_RUN_AT_MS);
    assert.equal(toExpiresAtMs(1, undefined, MAX_RUN_AT_MS - 1), MAX_RUN_AT_MS);
  });

  test("an expiry is refused naming its option and the form it takes", () => {
    const now = 1_700_000_000_000;
    for (const value of [0, -1, 1.5, "60000", Infinity, null, 315_360_000_001]) {
      assert.throws(() => toExpiresAtMs(value, undefined, now), {
        field: "expiresInMs",
        message: /^invalid expiresInMs: a whole number of milliseconds, at least 1 and at most 315360000000 ms/,
      });
    }
    for (const value of [0, -1, MAX_RUN_AT_MS + 1, 1.7e12 + 0.5, "1900000000000", new Date(), null]) {
      assert.throws(() => toExpiresAtMs(undefined, value, now), {
        field: "expiresAtMs",
        message: /^invalid expiresAtMs: whole milliseconds since the Unix epoch, from 1 to 32503680000000 \(the year 3000\)/,
      });
    }
    assert.throws(() => toExpiresAtMs(2, undefined, MAX_RUN_AT_MS - 1), {
      field: "expiresInMs",
      message: /not after the year 3000/,
    });
    assert.throws(() => toExpiresAtMs(1000, 1_900_000_000_000, now), {
      field: "expiresAtMs",
      message: /not together with expiresInMs/,
    });
  });

  test("a misspelt option is refused, not ignored", async () => {
    const connection = recordingConnection();
    const client = new Client(connection);
    // @ts-expect-error: `timeout` is not an option; `timeoutMs` is
    await refusedFor(client.enqueue("noop", {}, { timeout: 5000 }), "timeout");
    // @ts-expect-error: `delayMs` belongs to enqueueUnique and enqueueIn's first argument
    await refusedFor(client.enqueue("noop", {}, { delayMs: 5 }), "delayMs");
    assert.deepEqual(connection.calls, []);
  });
});

describe("payloads", () => {
  test("are written as JSON text", () => {
    assert.equal(encodePayload({ to: "a@b.c", n: [1, 2] }, 1000), '{"to":"a@b.c","n":[1,2]}');
    assert.equal(encodePayload(null, 1000), "null");
  });

  test("must be JSON-serializable", () => {
    const circular = {};
    circular.self = circular;
    for (const value of [circular, { n: 10n }, () => 1, Symbol("s"), undefined]) {
      assert.throws(() => encodePayload(value, 1000), { name: "InvalidJobError", field: "payload" });
    }
  });

  test("must be valid Unicode, in keys and values, as workers demand UTF-8", () => {
    assert.throws(() => encodePayload({ text: "half \ud800 a pair" }, 1000), { field: "payload" });
    assert.throws(() => encodePayload({ ["\udc00"]: 1 }, 1000), { field: "payload" });
    assert.equal(encodePayload({ rocket: "\u{1F680}" }, 1000), '{"rocket":"\u{1F680}"}');
  });

  test("are limited in UTF-8 bytes, the limit itself allowed", () => {
    const text = '"' + "\u00e9".repeat(9) + '"'; // 2 quotes + 9 two-byte characters = 20 bytes
    assert.equal(encodePayload("\u00e9".repeat(9), 20), text);
    assert.throws(() => encodePayload("\u00e9".repeat(9), 19), { field: "payload", message: /at most 19 bytes/ });
  });

  test("the client's maxPayloadBytes applies", async () => {
    const client = new Client(recordingConnection(), { maxPayloadBytes: 10 });
    await refusedFor(client.enqueue("noop", { text: "longer than ten bytes" }), "payload");
  });
});

describe("the client", () => {
  test("needs an ioredis connection", () => {
    // @ts-expect-error: not a connection
    assert.throws(() => new Client({}), TypeError);
  });

  test("refuses a namespace that would break the keys' hash tags", () => {
    for (const namespace of ["", "a{b", "has space"]) {
      assert.throws(() => new Client(recordingConnection(), { namespace }), TypeError);
    }
  });

  test("refuses unknown options and a bad payload limit", () => {
    // @ts-expect-error: not an option
    assert.throws(() => new Client(recordingConnection(), { prefix: "x" }), TypeError);
    assert.throws(() => new Client(recordingConnection(), { maxPayloadBytes: 0 }), TypeError);
    assert.throws(() => new Client(recordingConnection(), { maxQueueLen: 0 }), TypeError);
    assert.throws(() => new Client(recordingConnection(), { maxQueueLen: 2.5 }), TypeError);
  });

  test("wait refuses a poll interval that would spin", async () => {
    const client = new Client(recordingConnection());
    await assert.rejects(client.wait("1-1", { pollMs: 0 }), RangeError);
  });
});

test("fromUrl with bad options leaves no connection open", () => {
  // A connection left open would keep this test file's process from ending.
  assert.throws(() => Client.fromUrl("redis://127.0.0.1:1", { maxQueueLen: -1 }), TypeError);
});
