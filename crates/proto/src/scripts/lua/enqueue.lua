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
-- ARGV[16] debounce delay ms (absent or 0: not debounced; protocol 2.14), and then KEYS[4]
--          is the debounce key (`<ns>:{<queue>}:debounce:<key>`) rather than a unique key
-- ARGV[17] debounce max ms (absent or 0: no bound)
--          A debounced job whose key names a job still waiting for its first run is
--          folded into it: the waiting job takes the new job's fields (the last enqueue's
--          payload wins), keeps its id and first enqueue, and becomes due the debounce
--          delay from now, but no later than the debounce max after its first enqueue.
--          Otherwise the new job waits its debounce delay and the key names it.
-- ARGV[18] when the job may no longer start, ms since the Unix epoch (absent or 0: never;
--          protocol 2.16): a job not started by then ends as `expired` without running
-- ARGV[19] the job's group (absent or empty: none; protocol 2.17): where the queue limits
--          how many jobs of each group run at once, a job whose group has that many let
--          through waits its turn in the group's line (see `group_fill`); with a time
--          it takes its turn when its time comes (promote); with a unique key its record
--          waits `pending`, with no entry, while it waits its turn
-- Returns {job id, "created" | "duplicate" (unique key held) | "exists" (id already known)
-- | "debounced" (folded into the waiting job whose id is returned)}.
-- Errors with QUEUE_FULL when the queue holds as many jobs as its cap (backpressure),
-- with BAD_ID when the id has the form of a stream entry id (<digits>-<digits>), which
-- names the jobs that have no id of their own, and with BAD_ARG when a time or duration is
-- out of bounds (every client checks before it calls; here again, so that no number the
-- scripts cannot hold is ever stored).
local unique, debounce = KEYS[4], nil
local debounce_delay, debounce_max = ARGV[16] or '0', ARGV[17] or '0'
if debounce_delay ~= '0' then
  for _, arg in ipairs({{debounce_delay, 'debounce delay'}, {debounce_max, 'debounce max'}}) do
    if not whole_within(arg[1], MAX_DURATION_MS) then
      return redis.error_reply('BAD_ARG ' .. arg[2] .. ' ' .. arg[1] ..
        ': expected whole milliseconds from 0 to ' .. MAX_DURATION_MS)
    end
  end
  if ARGV[10] ~= '0' or not KEYS[4] then
    return redis.error_reply('BAD_ARG a debounced job names its debounce key as KEYS[4] ' ..
      'and holds no unique key')
  end
  unique = nil
  debounce = {key = KEYS[4], delay = tonumber(debounce_delay), max = tonumber(debounce_max)}
end
local reply = enqueue_job(KEYS[1], KEYS[2], KEYS[3], unique, ARGV, 0, {}, debounce,
  ARGV[18] or '0', ARGV[19] or '')
if type(reply) == 'string' then return redis.error_reply(reply) end
return reply
