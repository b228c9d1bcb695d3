// Checks how the id key of a job waiting in `later` is read: its state and the entry it becomes, one MessagePack array of strings; no Redis needed.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { parseWaiting, unpackStrings } from "../lib/waiting.js";

/** @param {number[]} bytes */
const b = (bytes) => Buffer.from(bytes);

/** @param {string | Buffer} value a fixstr: up to 31 bytes */
function fixstr(value) {
  const bytes = Buffer.from(value);
  return Buffer.concat([b([0xa0 | bytes.length]), bytes]);
}

/**
 * `length` bytes, not all of them text.
 * @param {number} length
 */
function bytesOf(length) {
  return Buffer.from(Array.from({ length }, (_, i) => i % 256));
}

describe("an array of strings", () => {
  test("of fixstr, as cmsgpack packs short strings", () => {
    assert.deepEqual(unpackStrings(Buffer.concat([b([0x92]), fixstr("id"), fixstr("job-1")])), [
      Buffer.from("id"),
      Buffer.from("job-1"),
    ]);
  });

  for (const [name, header, length] of /** @type {[string, number[], number][]} */ ([
    ["str8", [0xd9, 40], 40],
    ["str16", [0xda, 0x01, 0x00], 256],
    ["str32", [0xdb, 0x00, 0x01, 0x00, 0x00], 65_536],
    ["bin8", [0xc4, 3], 3],
    ["bin16", [0xc5, 0x00, 0x03], 3],
    ["bin32", [0xc6, 0x00, 0x00, 0x00, 0x03], 3],
  ])) {
    test(`with a ${name} header`, () => {
      const value = bytesOf(length);
      const items = unpackStrings(Buffer.concat([b([0x92]), fixstr("payload"), b(header), value]));
      assert.ok(items !== null);
      assert.equal(items.length, 2);
      assert.ok(value.equals(items[1]));
    });
  }

  test("with an array16 or array32 header, or none at all", () => {
    const names = Array.from({ length: 20 }, (_, i) => `f${i}`);
    const items = unpackStrings(Buffer.concat([b([0xdc, 0x00, 20]), ...names.map(fixstr)]));
    assert.deepEqual(items?.map(String), names);
    assert.deepEqual(unpackStrings(Buffer.concat([b([0xdd, 0, 0, 0, 2]), fixstr("a"), fixstr("")]))?.map(String), [
      "a",
      "",
    ]);
    assert.deepEqual(unpackStrings(b([0x90])), []);
  });

  const malformed = {
    empty: b([]),
    "an item missing": Buffer.concat([b([0x92]), fixstr("id")]),
    "a string cut short": Buffer.concat([b([0x91, 0xa5]), Buffer.from("abc")]),
    "a str8 length cut short": b([0x91, 0xd9]),
    "a str16 length cut short": b([0x91, 0xda, 0x00]),
    "a str32 length cut short": b([0x91, 0xdb, 0x00, 0x00, 0x00]),
    "a length past the data": Buffer.concat([b([0x91, 0xc6, 0xff, 0xff, 0xff, 0xff]), Buffer.from("abc")]),
    "an array header cut short": b([0xdc, 0x00]),
    "more items than the data holds": Buffer.concat([b([0xdd, 0xff, 0xff, 0xff, 0xff]), fixstr("a")]),
    "bytes after the array": Buffer.concat([b([0x91]), fixstr("a"), Buffer.from("!")]),
    "an integer": b([0x91, 0x01]),
    "a nested array": b([0x91, 0x90]),
    "a map": Buffer.concat([b([0x81]), fixstr("a"), fixstr("b")]),
    "a string, not an array": fixstr("id"),
  };
  for (const [what, data] of Object.entries(malformed)) {
    test(`is not read from ${what}`, () => {
      assert.equal(unpackStrings(data), null);
    });
  }
});

describe("a waiting job's id key", () => {
  /** @param {string} state @param {(string | Buffer)[]} items */
  const value = (state, items) =>
    Buffer.concat([Buffer.from(`${state} `), b([0x90 | items.length]), ...items.map(fixstr)]);

  test("gives its state and the fields of the entry it becomes", () => {
    for (const state of ["scheduled", "failed", "grouped"]) {
      const waiting = parseWaiting(value(state, ["id", "job-1", "type", "render", "payload", b([0x81, 0xa1, 0x61, 0x01])]));
      assert.ok(waiting !== null);
      assert.equal(waiting.state, state);
      assert.deepEqual([...waiting.fields.keys()], ["id", "type", "payload"]);
      assert.equal(String(waiting.fields.get("type")), "render");
      assert.ok(b([0x81, 0xa1, 0x61, 0x01]).equals(/** @type {Buffer} */ (waiting.fields.get("payload"))));
    }
  });

  const others = {
    "an entry id": Buffer.from("1732300000000-3"),
    "a completion": Buffer.from("done 1732300000250-0"),
    "a state alone": Buffer.from("scheduled"),
    "a state and a space": Buffer.from("scheduled "),
    "another state": value("pending", ["id", "a"]),
    "a state in capitals": value("Scheduled", ["id", "a"]),
    "a name without its value": value("failed", ["id", "a", "type"]),
    "a name that is not text": value("failed", [b([0xff]), "a"]),
    "a value cut short": value("failed", ["id", "a"]).subarray(0, -1),
    "bytes after it": Buffer.concat([value("failed", ["id", "a"]), Buffer.from(" ")]),
  };
  for (const [what, data] of Object.entries(others)) {
    test(`is not read from ${what}`, () => {
      assert.equal(parseWaiting(data), null);
    });
  }
});
