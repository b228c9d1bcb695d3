-- enqueue: put a job with an id of its own on its stream now, or in `delayed` for later.
-- A job to run now that holds no unique key is one stream entry carrying the whole job,
-- and its id key remembers the id (the entry's id until it completes); any other job gets
-- a record.
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
local id_key = id_key_of(KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[2], id_key) > 0 then return {ARGV[1], 'exists'} end

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

if due <= now and #KEYS < 4 then
  -- The whole job in its entry: a worker runs it as it runs a job without an id.
  -- A count or timeout of 0 means the worker's default, as in a record.
  local fields = {'id', ARGV[1], 'type', ARGV[2], 'payload', ARGV[3]}
  for _, extra in ipairs({{'content_type', ARGV[4]}, {'max_attempts', ARGV[5]},
      {'timeout', ARGV[6]}, {'backoff', ARGV[7]}, {'trace', ARGV[13]}}) do
    if extra[2] ~= '' and extra[2] ~= '0' then
      fields[#fields + 1] = extra[1]
      fields[#fields + 1] = extra[2]
    end
  end
  local entry = redis.call('XADD', KEYS[1], '*', unpack(fields))
  -- Remembered while the job lives; its completion gives the key its expiry.
  redis.call('SET', id_key, entry)
  return {ARGV[1], 'created'}
end

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
  -- Without a unique key to release, the job can run without its record once due.
  if #KEYS < 4 then redis.call('HSET', KEYS[2], 'fast', 1) end
else
  local entry = redis.call('XADD', KEYS[1], '*', 'id', ARGV[1])
  redis.call('HSET', KEYS[2], 'status', 'pending', 'run_at', now, 'entry', entry)
end
return {ARGV[1], 'created'}
