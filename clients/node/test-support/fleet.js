// Shared setup of the tests that need a running fleet: redis-server and a flotilla worker serving critical, default and low.
// It lives outside test/ because the test runner runs every .js file under test/ as a test file.

import { randomUUID } from "node:crypto";

import { after, before } from "node:test";

import { Redis } from "ioredis";

import { Client } from "../index.js";

/** Where the fleet's Redis is; the tests that need it are skipped without it. */
export const REDIS_URL = process.env.FLOTILLA_REDIS_URL;

/** The `skip` option of a suite that needs the fleet: false when it can run, else why not. */
export const SKIP_WITHOUT_FLEET = REDIS_URL
  ? false
  : "FLOTILLA_REDIS_URL is not set; set it to a Redis with a flotilla worker serving critical, default and low to run this";

/**
 * A client, and a plain connection for checking what the client wrote.
 * @returns {{ client: Client, redis: Redis }}
 */
export function connect() {
  return { client: Client.fromUrl(/** @type {string} */ (REDIS_URL)), redis: new Redis(/** @type {string} */ (REDIS_URL)) };
}

/**
 * Connects before a suite's tests and closes after them, dropping the suite's idle queue.
 * Call it in a describe block; read `client` and `redis` inside tests, once connected.
 * @returns {{ readonly client: Client, readonly redis: Redis, idle: string }}
 */
export function useFleet() {
  /** @type {ReturnType<typeof connect> | undefined} */
  let fleet;
  const idle = idleQueue();
  before(() => {
    fleet = connect();
  });
  after(async () => {
    if (fleet === undefined) return;
    await dropQueue(fleet.redis, idle);
    await fleet.client.quit();
    await fleet.redis.quit();
  });
  const connected = () => {
    if (fleet === undefined) throw new Error("useFleet: read client and redis inside a test");
    return fleet;
  };
  return {
    get client() {
      return connected().client;
    },
    get redis() {
      return connected().redis;
    },
    idle,
  };
}

/**
 * A name no other test (or earlier run against the same Redis) uses.
 * @param {string} prefix
 */
export function freshName(prefix) {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/**
 * A queue no worker serves, so its entries stay as written; drop its keys with `dropQueue`.
 */
export function idleQueue() {
  return freshName("node-client-idle");
}

/**
 * Deletes a test queue's keys and its name in the queue set.
 * @param {Redis} redis
 * @param {string} queue
 */
export async function dropQueue(redis, queue) {
  const keys = await redis.keys(`flotilla:{${queue}}:*`);
  if (keys.length > 0) await redis.del(...keys);
  await redis.srem("flotilla:{global}:queues", queue);
}

/**
 * How many completions of job `id` the queue's `done` stream holds: a job that ran once has
 * one.
 * @param {Redis} redis
 * @param {string} queue
 * @param {string} id
 */
export async function completionsOf(redis, queue, id) {
  const entries = await redis.xrange(`flotilla:{${queue}}:done`, "-", "+");
  return entries.filter(([, fields]) => fieldsOf(fields).id === id).length;
}

/**
 * A stream entry's flat [name, value, ...] fields as an object.
 * @param {string[]} flat
 * @returns {Record<string, string>}
 */
export function fieldsOf(flat) {
  /** @type {Record<string, string>} */
  const fields = {};
  for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]] = flat[i + 1];
  return fields;
}

/**
 * Polls `read` until `accept` takes its value, for states a job passes through briefly.
 * @template T
 * @param {() => Promise<T>} read
 * @param {(value: T) => boolean} accept
 * @param {number} timeoutMs
 * @returns {Promise<T>}
 */
export async function eventually(read, accept, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (accept(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
