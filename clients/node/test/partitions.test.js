// Placement over a queue's partitions: the hash and the names, as PROTOCOL.md gives them.

import assert from "node:assert/strict";
import { test } from "node:test";

import { fnv1a, parseCount, partitionFor, partitionName, splitPartition } from "../lib/partitions.js";

test("keys place jobs by the protocol's test vectors", () => {
  for (const [key, hash, count, partition] of [
    ["report-7", 0x657aba5f, 6, 3],
    ["user-1", 0xf5537974, 6, 4],
    ["user-2", 0xf8537e2d, 6, 1],
    ["order-8", 0x227fbf42, 8, 2],
    ["a", 0xe40c292c, 4, 0],
  ]) {
    assert.equal(fnv1a(String(key)), hash, String(key));
    assert.equal(partitionFor(String(key), Number(count)), partition, String(key));
  }
});

test("a key of any script hashes its UTF-8 bytes", () => {
  assert.equal(fnv1a(""), 0x811c9dc5);
  assert.equal(fnv1a("é"), fnv1a("\u00e9"));
  assert.notEqual(fnv1a("é"), fnv1a("e"));
  assert.equal(partitionFor("anything", 1), 0);
});

test("only a partition number splits a name", () => {
  assert.deepEqual(splitPartition("mail#3"), ["mail", 3]);
  assert.deepEqual(splitPartition("a#b#2"), ["a#b", 2]);
  for (const whole of ["mail", "mail#0", "mail#03", "mail#x", "mail#+3", "#3", "mail#", "mail#1024"]) {
    assert.deepEqual(splitPartition(whole), [whole, 0], whole);
  }
  assert.equal(partitionName("mail", 0), "mail");
  assert.equal(partitionName("mail", 5), "mail#5");
});

test("a stored count reads as workers read it", () => {
  assert.deepEqual(["6", "1024", null].map(parseCount), [6, 1024, 1]);
  // Anything but 1-1024 in digits is one partition, so no job goes where no worker reads.
  for (const bad of ["2000", "0", "abc", "6_0", "+6", "0x6", " 6", ""]) {
    assert.equal(parseCount(bad), 1, bad);
  }
});
