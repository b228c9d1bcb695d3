// Polls a job's status until it reaches a state it cannot leave on its own.

import { setTimeout as sleep } from "node:timers/promises";

import { WaitTimeoutError } from "./errors.js";

/**
 * States a job stays in without an operator: `failed` is not among them (its retry is due),
 * and a dead job moves again only when an operator retries it. `expired` (protocol 2.16):
 * not started by its `expires_at`, it ended without running.
 */
export const TERMINAL_STATUSES = Object.freeze(["completed", "dead", "cancelled", "expired"]);

/**
 * @param {() => Promise<import("./views.js").JobStatus | null>} readStatus
 * @param {string} id for the timeout's message
 * @param {{ timeoutMs: number, pollMs: number }} options
 * @returns {Promise<import("./views.js").JobStatus>}
 */
export async function waitUntilTerminal(readStatus, id, { timeoutMs, pollMs }) {
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new RangeError(`timeoutMs must be a number of milliseconds, 0 or more (got ${timeoutMs})`);
  }
  if (!Number.isFinite(pollMs) || pollMs <= 0) {
    throw new RangeError(`pollMs must be a positive number of milliseconds (got ${pollMs})`);
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await readStatus();
    if (status !== null && TERMINAL_STATUSES.includes(status.status)) return status;
    const left = deadline - Date.now();
    if (left <= 0) throw new WaitTimeoutError(id, timeoutMs, status?.status ?? null);
    await sleep(Math.min(pollMs, left));
  }
}
