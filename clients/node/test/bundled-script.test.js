// Checks that the bundled enqueue.lua, enqueue_flow.lua and batch.lua are byte for byte the published protocol/v2 scripts.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";

import { BATCH_LUA } from "../lib/batches.js";
import { ENQUEUE_FLOW_LUA } from "../lib/flows.js";
import { ENQUEUE_LUA } from "../lib/script.js";

const bundled = new URL("../enqueue.lua", import.meta.url);
const published = new URL("../../../protocol/v2/enqueue.lua", import.meta.url);

// Outside the repository (an unpacked package) there is nothing to compare with.
const outsideRepository = existsSync(published) ? false : "protocol/v2/enqueue.lua is not beside this package";

test("enqueue.lua is an exact copy of protocol/v2/enqueue.lua", { skip: outsideRepository }, () => {
  assert.ok(readFileSync(bundled).equals(readFileSync(published)), "copy protocol/v2/enqueue.lua over clients/node/enqueue.lua");
});

test("the client runs the bundled script as it is", () => {
  assert.equal(ENQUEUE_LUA, readFileSync(bundled, "utf8"));
  // The helpers it uses come first, the enqueue script itself last.
  assert.match(ENQUEUE_LUA, /\n-- enqueue: put a job[^]*enqueue_job\(KEYS\[1\]/);
});

const bundledFlow = new URL("../enqueue_flow.lua", import.meta.url);
const publishedFlow = new URL("../../../protocol/v2/enqueue_flow.lua", import.meta.url);

test("enqueue_flow.lua is an exact copy of protocol/v2/enqueue_flow.lua", { skip: outsideRepository }, () => {
  assert.ok(
    readFileSync(bundledFlow).equals(readFileSync(publishedFlow)),
    "copy protocol/v2/enqueue_flow.lua over clients/node/enqueue_flow.lua",
  );
});

test("the client runs the bundled flow script as it is", () => {
  assert.equal(ENQUEUE_FLOW_LUA, readFileSync(bundledFlow, "utf8"));
  // The helpers it uses come first, the flow script itself last.
  assert.match(ENQUEUE_FLOW_LUA, /\n-- enqueue_flow: create a flow[^]*return replies\n$/);
});

const bundledBatch = new URL("../batch.lua", import.meta.url);
const publishedBatch = new URL("../../../protocol/v2/batch.lua", import.meta.url);

test("batch.lua is an exact copy of protocol/v2/batch.lua", { skip: outsideRepository }, () => {
  assert.ok(readFileSync(bundledBatch).equals(readFileSync(publishedBatch)), "copy protocol/v2/batch.lua over clients/node/batch.lua");
});

test("the client runs the bundled batch script as it is", () => {
  assert.equal(BATCH_LUA, readFileSync(bundledBatch, "utf8"));
  // The helpers it uses come first, the batch script itself last.
  assert.match(BATCH_LUA, /\n-- batch: open a batch[^]*'sealed'\)\nreturn \{/);
});
