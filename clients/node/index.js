// The package's entry point: the client, its errors, and the protocol helpers callers may need.

export { Client } from "./lib/client.js";
export { FlotillaError, InvalidJobError, QueueFullError, WaitTimeoutError } from "./lib/errors.js";
export { fullId, parseFullId } from "./lib/ids.js";
export { TERMINAL_STATUSES } from "./lib/wait.js";
