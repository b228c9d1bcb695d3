-- enqueue: put a job with an id of its own on its stream now, or aside until its time.
-- A job that holds no unique key has no record: to run now it is one stream entry
-- carrying the whole job, and its id key remembers the id (the entry's id until it
-- completes); to run later its id waits in `later` and its id key holds the entry it
-- becomes. A job with a unique key gets a record (in `delayed` while it waits).
-- KEYS[1] stream   KEYS[2] job record   KEYS[3] delayed set   KEYS[4] unique key (optional)
-- ARGV[1] job id   ARGV[2] type   ARGV[3] payload   ARGV[4] content type
-- ARGV[5] max attempts   ARGV[6] timeout ms   ARGV[7] backoff   ARGV[8] run at (ms, 0 = not set)
-- ARGV[9] delay ms (0 = none)   ARGV[10] unique ttl ms   ARGV[11] queue length cap (0 = none)
-- ARGV[12] queue name   ARGV[13] trace context   ARGV[14] protocol version
-- ARGV[15] "expiry" to hold the unique key until its TTL runs out, else it is released
--          when the job completes or is cancelled
-- Returns {job id, "created" | "duplicate" (unique key held) | "exists" (id already known)}.
-- Errors with QUEUE_FULL when the queue holds as many jobs as its cap (backpressure),
-- with BAD_ID when the id has the form of a stream entry id (<digits>-<digits>), which
-- names the jobs that have no id of their own, and with BAD_ARG when a time or duration is
-- out of bounds (every client checks before it calls; here again, so that no number the
-- scripts cannot hold is ever stored).
local reply = enqueue_job(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV, 0, {})
if type(reply) == 'string' then return redis.error_reply(reply) end
return reply
