-- enqueue: create a job record and put it on its stream now, or in `delayed` for later.
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
for _, bound in ipairs({{6, MAX_DURATION_MS, 'timeout'}, {8, MAX_RUN_AT_MS, 'run at'},
    {9, MAX_DURATION_MS, 'delay'}, {10, MAX_DURATION_MS, 'unique hold'}}) do
  if not whole_within(ARGV[bound[1]], bound[2]) then
    return redis.error_reply('BAD_ARG ' .. bound[3] .. ' ' .. tostring(ARGV[bound[1]]) ..
      ': expected whole milliseconds from 0 to ' .. bound[2])
  end
end
if is_entry_id(ARGV[1]) then
  return redis.error_reply('BAD_ID id ' .. ARGV[1] .. ' has the form of a stream entry id ' ..
    '(<digits>-<digits>), which names jobs without an id of their own: give the job an id ' ..
    'of another form, a UUID say')
end
if #KEYS >= 4 then
  local holder = redis.call('GET', KEYS[4])
  if holder then return {holder, 'duplicate'} end
end
if redis.call('EXISTS', KEYS[2]) == 1 then return {ARGV[1], 'exists'} end

local cap = tonumber(ARGV[11])
if cap > 0 then
  local depth = redis.call('XLEN', KEYS[1]) + redis.call('ZCARD', KEYS[3])
  if depth >= cap then
    return redis.error_reply('QUEUE_FULL queue ' .. ARGV[12] .. ' holds ' .. depth ..
      ' jobs, its limit is ' .. cap)
  end
end

local now = now_ms()
local due = tonumber(ARGV[8])
local delay = tonumber(ARGV[9])
if due == 0 and delay > 0 then due = now + delay end

redis.call('HSET', KEYS[2], 'id', ARGV[1], 'type', ARGV[2], 'queue', ARGV[12],
  'payload', ARGV[3], 'content_type', ARGV[4], 'attempts', 0, 'max_attempts', ARGV[5],
  'timeout_ms', ARGV[6], 'backoff', ARGV[7], 'created_at', now, 'v', ARGV[14])
if ARGV[13] ~= '' then redis.call('HSET', KEYS[2], 'trace', ARGV[13]) end
if #KEYS >= 4 then
  redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[10])
  if ARGV[15] ~= 'expiry' then redis.call('HSET', KEYS[2], 'unique_key', KEYS[4]) end
end

if due > now then
  redis.call('ZADD', KEYS[3], due, ARGV[1])
  redis.call('HSET', KEYS[2], 'status', 'scheduled', 'run_at', due)
else
  local entry = redis.call('XADD', KEYS[1], '*', 'id', ARGV[1])
  redis.call('HSET', KEYS[2], 'status', 'pending', 'run_at', now, 'entry', entry)
end
return {ARGV[1], 'created'}
