// Checks how a job's record, stream entry, completion and place in `later` are read into one status shape, and what an id key names; no Redis needed.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { TERMINAL_STATUSES } from "../index.js";
import { Keys } from "../lib/keys.js";
import { isEntryId, parseIdKey } from "../lib/status.js";
import { completionsOf, fromCompletion, fromEntry, fromRecord, fromWaiting } from "../lib/views.js";
import { parseWaiting } from "../lib/waiting.js";

/** @param {Record<string, string | Buffer>} fields */
function fieldsOf(fields) {
  return new Map(Object.entries(fields).map(([name, value]) => [name, Buffer.from(value)]));
}

describe("a record", () => {
  test("gives its fields, parsed", () => {
    const status = fromRecord(
      fieldsOf({
        status: "dead",
        type: "fail",
        attempts: "2",
        max_attempts: "2",
        payload: '{"times":-1}',
        content_type: "json",
        error: "planned failure on attempt 2",
        errors: '[{"attempt":1,"at":5,"error":"one"},{"attempt":2,"at":6,"error":"two"}]',
        run_at: "4",
        next_run_at: "7",
        expires_at: "9",
      }),
      "job-1",
      "default",
    );
    assert.deepEqual(status, {
      id: "job-1",
      queue: "default",
      status: "dead",
      type: "fail",
      attempts: 2,
      maxAttempts: 2,
      result: null,
      error: "planned failure on attempt 2",
      errors: [
        { attempt: 1, at: 5, error: "one" },
        { attempt: 2, at: 6, error: "two" },
      ],
      payload: { times: -1 },
      runAt: 4,
      // A retry no longer waits once the job is dead.
      nextRunAt: null,
      expiresAt: 9,
      group: null,
    });
  });

  test("a failed record gives when its retry is due", () => {
    const status = fromRecord(fieldsOf({ status: "failed", run_at: "4", next_run_at: "7" }), "a", "q");
    assert.deepEqual([status.runAt, status.nextRunAt], [4, 7]);
  });

  test("an empty payload is JSON null, and a record without content_type is JSON", () => {
    assert.equal(fromRecord(fieldsOf({ status: "pending", payload: "" }), "a", "q").payload, null);
    assert.deepEqual(fromRecord(fieldsOf({ status: "pending", payload: "[1]" }), "a", "q").payload, [1]);
  });

  test("a msgpack payload is handed back as its bytes", () => {
    const bytes = Buffer.from([0x81, 0xa1, 0x61, 0x01]);
    const status = fromRecord(fieldsOf({ status: "pending", content_type: "msgpack", payload: bytes }), "a", "q");
    assert.ok(Buffer.isBuffer(status.payload));
    assert.ok(bytes.equals(/** @type {Buffer} */ (status.payload)));
  });

  test("a missing or undecodable error history is empty", () => {
    assert.deepEqual(fromRecord(fieldsOf({ status: "failed" }), "a", "q").errors, []);
    assert.deepEqual(fromRecord(fieldsOf({ status: "failed", errors: "not json" }), "a", "q").errors, []);
  });

  test("a record without max_attempts leaves it to the worker's default", () => {
    assert.equal(fromRecord(fieldsOf({ status: "cancelled" }), "a", "q").maxAttempts, null);
  });
});

describe("a fast-path entry", () => {
  const entry = fieldsOf({ type: "sleep", payload: '{"ms":5}', attempts: "1", max_attempts: "4" });

  test("is pending until delivered", () => {
    const status = fromEntry(entry, "1-0", "default", null);
    assert.equal(status.status, "pending");
    assert.equal(status.attempts, 1);
    assert.equal(status.maxAttempts, 4);
    assert.deepEqual(status.payload, { ms: 5 });
  });

  test("is running once delivered, its attempt counting the deliveries", () => {
    const status = fromEntry(entry, "1-0", "default", 2);
    assert.equal(status.status, "running");
    assert.equal(status.attempts, 3);
  });
});

test("an entry carrying a job of its own id reports that id", () => {
  const entry = fieldsOf({ id: "report-7", type: "render", payload: "{}", max_attempts: "2" });
  const status = fromEntry(entry, "report-7", "default", 1);
  assert.equal(status.id, "report-7");
  assert.equal(status.status, "running");
  assert.equal(status.attempts, 1);
  assert.equal(status.maxAttempts, 2);
});

test("an entry retried without a record carries its past", () => {
  const entry = fieldsOf({
    id: "1732300000000-0",
    type: "fail",
    payload: "{}",
    attempts: "1",
    error: "boom",
    errors: '[{"attempt":1,"at":1732300001000,"error":"boom"}]',
    created_at: "1732300000000",
  });
  const status = fromEntry(entry, "1732300000000-0", "default", 1, "1732300002000-4");
  assert.equal(status.id, "1732300000000-0");
  assert.equal(status.attempts, 2, "the attempt spent and this delivery");
  assert.equal(status.error, "boom");
  assert.deepEqual(status.errors, [{ attempt: 1, at: 1732300001000, error: "boom" }]);
  assert.equal(status.runAt, 1732300000000, "its first enqueue, not its retry's entry");
  const plain = fromEntry(fieldsOf({ type: "noop", payload: "{}" }), "1732300000005-2", "default", null);
  assert.deepEqual([plain.error, plain.errors, plain.runAt], [null, [], 1732300000005]);
});

/**
 * An id key's value as the scripts write it: the state, a space, then `cmsgpack.pack` of
 * the entry's pairs (at most 15 items, each under 256 bytes: fixstr or str8).
 * @param {string} state
 * @param {Record<string, string | Buffer>} fields
 */
function packed(state, fields) {
  const pairs = Object.entries(fields).flatMap(([name, value]) => [Buffer.from(name), Buffer.from(value)]);
  const header = (/** @type {Buffer} */ item) =>
    item.length < 32 ? Buffer.from([0xa0 | item.length]) : Buffer.from([0xd9, item.length]);
  const items = pairs.map((item) => Buffer.concat([header(item), item]));
  return Buffer.concat([Buffer.from(`${state} `), Buffer.from([0x90 | pairs.length]), ...items]);
}

describe("a job waiting in later", () => {
  test("scheduled: its due time, and what its entry says", () => {
    const waiting = parseWaiting(
      packed("scheduled", {
        id: "report-7",
        type: "render",
        payload: '{"day":1}',
        max_attempts: "4",
        run_at: "1732300060000",
        created_at: "1732300000000",
        expires_at: "1732300090000",
      }),
    );
    assert.ok(waiting !== null);
    assert.deepEqual(fromWaiting(waiting, "report-7", "default", 1732300060000), {
      id: "report-7",
      queue: "default",
      status: "scheduled",
      type: "render",
      attempts: 0,
      maxAttempts: 4,
      result: null,
      error: null,
      errors: [],
      payload: { day: 1 },
      runAt: 1732300060000,
      nextRunAt: null,
      expiresAt: 1732300090000,
      group: null,
    });
    // Promoted since its key was read: the entry's own `run_at` tells when it was due.
    assert.equal(fromWaiting(waiting, "report-7", "default", null).runAt, 1732300060000);
  });

  test("failed: its attempts, errors and when its retry is due", () => {
    const bytes = Buffer.from([0x81, 0xa1, 0x61, 0x01]);
    const waiting = parseWaiting(
      packed("failed", {
        id: "1732300000000-0",
        type: "fail",
        content_type: "msgpack",
        payload: bytes,
        attempts: "1",
        error: "planned failure on attempt 1",
        errors: '[{"attempt":1,"at":1732300001000,"error":"planned failure on attempt 1"}]',
      }),
    );
    assert.ok(waiting !== null);
    const status = fromWaiting(waiting, "1732300000000-0", "default", 1732300061000);
    assert.equal(status.status, "failed");
    assert.equal(status.attempts, 1);
    assert.equal(status.maxAttempts, null);
    assert.equal(status.error, "planned failure on attempt 1");
    assert.deepEqual(status.errors, [{ attempt: 1, at: 1732300001000, error: "planned failure on attempt 1" }]);
    assert.ok(Buffer.isBuffer(status.payload) && bytes.equals(status.payload), "a msgpack payload stays bytes");
    assert.deepEqual([status.runAt, status.nextRunAt], [null, 1732300061000]);
  });
});

test("a completion keeps the result but no payload", () => {
  const status = fromCompletion(
    fieldsOf({ id: "1-0", type: "sleep", attempts: "1", result: '{"slept_ms":5}' }),
    "1-0",
    "default",
  );
  assert.equal(status.status, "completed");
  assert.deepEqual(status.result, { slept_ms: 5 });
  assert.equal(status.payload, null);
  assert.equal(status.maxAttempts, null);
});

test("entry ids are told from other job ids", () => {
  assert.ok(isEntryId("1732300000000-0"));
  assert.ok(isEntryId("18446744073709551615-18446744073709551615"));
  assert.ok(!isEntryId("18446744073709551616-0"), "past a stream id's range");
  assert.ok(!isEntryId("0190f5a2-7c1e-7d2a-9a4b-1f2e3d4c5b6a"));
  assert.ok(!isEntryId("12-"));
  assert.ok(!isEntryId("abc"));
});

describe("an id key", () => {
  test("names the entry carrying its job, or its completion in the form protocol 2.7 wrote", () => {
    assert.deepEqual(parseIdKey("1732300000000-3"), { completed: false, entryId: "1732300000000-3" });
    assert.deepEqual(parseIdKey("done 1732300000250-0"), { completed: true, entryId: "1732300000250-0" });
  });

  test("holds a waiting job, read from its bytes", () => {
    const value = packed("scheduled", { id: "a", type: "t", payload: Buffer.from([0xff]) });
    const held = parseIdKey(value);
    assert.ok(held !== null && "state" in held);
    assert.equal(held.state, "scheduled");
    assert.deepEqual([...held.fields.keys()], ["id", "type", "payload"]);
    assert.ok(Buffer.from([0xff]).equals(/** @type {Buffer} */ (held.fields.get("payload"))));
    assert.deepEqual(parseIdKey(Buffer.from("done 1732300000250-0")), { completed: true, entryId: "1732300000250-0" });
    assert.equal(parseIdKey(value.subarray(0, value.length - 1)), null, "cut short");
  });

  test("of another form names nothing", () => {
    for (const value of [null, "", "done", "done ", "done x-1", "gone 1-0", "1-0 done", "done 1-0 extra", "abc"]) {
      assert.equal(parseIdKey(value), null, String(value));
    }
    assert.equal(parseIdKey("done 18446744073709551616-0"), null, "past a stream id's range");
  });

  test("shares its queue's hash tag, as the later and done_ids sets do", () => {
    assert.equal(new Keys("flotilla").idKey("emails", "report-7"), "flotilla:{emails}:id:report-7");
    assert.equal(new Keys("ns").later("q"), "ns:{q}:later");
    assert.equal(new Keys("flotilla").doneIds("emails"), "flotilla:{emails}:done_ids");
    assert.equal(new Keys("ns").doneIds("q"), "ns:{q}:done_ids");
  });
});

describe("a done entry", () => {
  test("is split into its completions at each id", () => {
    const flat = ["id", "a", "attempts", "1", "id", "b", "attempts", "2"].map((s) => Buffer.from(s));
    const completions = completionsOf(flat);
    assert.deepEqual(
      completions.map((fields) => [fields.get("id")?.toString(), fields.get("attempts")?.toString()]),
      [
        ["a", "1"],
        ["b", "2"],
      ],
    );
    assert.deepEqual(completionsOf([]), []);
  });
});

describe("an expiry (protocol 2.16)", () => {
  test("an expired job's record reads as a state of its own, which wait stops at", () => {
    const status = fromRecord(
      fieldsOf({
        status: "expired",
        type: "render",
        attempts: "0",
        created_at: "1732300000000",
        expires_at: "1732300060000",
        finished_at: "1732300060004",
      }),
      "report-7",
      "default",
    );
    assert.equal(status.status, "expired");
    assert.equal(status.attempts, 0);
    assert.equal(status.expiresAt, 1732300060000);
    assert.ok(TERMINAL_STATUSES.includes(status.status));
    assert.deepEqual(TERMINAL_STATUSES, ["completed", "dead", "cancelled", "expired"]);
  });

  test("is read from a record, an entry or a waiting entry, and is null where none is kept", () => {
    const at = "1732300060000";
    const waiting = parseWaiting(packed("scheduled", { id: "j", type: "noop", expires_at: at }));
    assert.ok(waiting !== null);
    for (const status of [
      fromRecord(fieldsOf({ status: "pending", expires_at: at }), "j", "q"),
      fromEntry(fieldsOf({ type: "noop", expires_at: at }), "1-0", "q", null),
      fromWaiting(waiting, "j", "q", 1732300030000),
    ]) {
      assert.equal(status.expiresAt, 1732300060000, status.status);
    }
    assert.equal(fromRecord(fieldsOf({ status: "pending" }), "j", "q").expiresAt, null, "it never expires");
    assert.equal(fromRecord(fieldsOf({ status: "pending", expires_at: "0" }), "j", "q").expiresAt, null, "0: never");
    assert.equal(fromCompletion(fieldsOf({ id: "1-0", type: "noop" }), "1-0", "q").expiresAt, null);
  });
});

describe("a group (protocol 2.17)", () => {
  test("is read from a record, an entry or a waiting entry, and is null where none is kept", () => {
    const fields = { id: "sync-1", type: "sync", payload: "null", group: "account-42" };
    const waiting = parseWaiting(packed("scheduled", { ...fields, run_at: "1732300060000" }));
    assert.ok(waiting !== null);
    for (const status of [
      fromRecord(fieldsOf({ ...fields, status: "running" }), "sync-1", "q"),
      fromEntry(fieldsOf(fields), "sync-1", "q", null, "1732300000000-0"),
      fromWaiting(waiting, "sync-1", "q", 1732300060000),
    ]) {
      assert.equal(status.group, "account-42", status.status);
    }
    assert.equal(fromEntry(fieldsOf({ type: "noop" }), "1-0", "q", null).group, null, "a job of no group");
    assert.equal(fromRecord(fieldsOf({ status: "pending", group: "" }), "j", "q").group, null);
    assert.equal(fromCompletion(fieldsOf({ id: "1-0", type: "noop" }), "1-0", "q").group, null);
  });

  test("a job waiting its group's turn is pending, with its group", () => {
    const waiting = parseWaiting(
      packed("grouped", {
        id: "sync-1",
        type: "sync",
        payload: '{"a":1}',
        group: "account-42",
        created_at: "1700000000000",
      }),
    );
    assert.ok(waiting !== null && waiting.state === "grouped");
    const status = fromWaiting(waiting, "sync-1", "default", null);
    assert.deepEqual([status.status, status.type, status.group, status.payload], ["pending", "sync", "account-42", { a: 1 }]);
  });
});
