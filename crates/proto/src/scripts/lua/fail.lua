-- fail: end an attempt with an error: retry now, retry later (via `delayed`) or go dead.
-- KEYS[1] stream   KEYS[2] job record   KEYS[3] delayed set   KEYS[4] dead stream
-- KEYS[5] dead index
-- ARGV[1] entry id   ARGV[2] group   ARGV[3] lease token   ARGV[4] error message
-- ARGV[5] retry delay ms (-1 = give up now)   ARGV[6] dead retention ms
-- ARGV[7] dead stream max length   ARGV[8] consumer   ARGV[9] job id   ARGV[10] queue name
-- ARGV[11] for a snooze (protocol 2.13), the most snoozes a job may take, else 0: a
-- snoozed attempt waits the delay without spending an attempt or recording an error, and
-- its job's `snoozes` grows by one; past the most, the snooze is a failed attempt whose
-- error says so
-- then, from ARGV[12], what a fast-path attempt passes (see `adopt`): a job without a
-- record gets one here and is retried, or buried, through it.
-- A fast-path attempt whose job has no record and is retried goes on without one (protocol
-- 2.7): its entry is rewritten with the attempts spent and the errors so far, onto the
-- stream for a retry now, else into `later` (its id key holding the entry) until due.
-- KEYS[6] later set
-- Returns {"retry", due ms}, {"snoozed", due ms}, {"dead", reason}, {"stale"}, {"cancelled"}
-- or {"missing"}.
local snooze_limit = tonumber(ARGV[11]) or 0
local message = ARGV[4]

-- The error of a snooze past the most a job may take.
local function over_snoozed(snoozes)
  return 'snoozed ' .. snoozes .. ' times, the most a job may (limits.max_snoozes): ' ..
    'this snooze counts as a failed attempt'
end

-- The retry of a fast-path attempt without a record, or nil when the job must go through
-- its record (it dies now, or its entry was deleted by hand while it ran).
local function retry_without_record()
  local stream, group, consumer, entry, job_id = KEYS[1], ARGV[2], ARGV[8], ARGV[1], ARGV[9]
  local delay, delivery = tonumber(ARGV[5]), tonumber(ARGV[12])
  local attempt, max_attempts = tonumber(ARGV[16]) or 0, tonumber(ARGV[17]) or 1
  if delay < 0 then return nil end
  if owned_by(stream, group, consumer, {entry})[entry] ~= delivery then
    return {not_current(stream, entry)}
  end
  local e = redis.call('XRANGE', stream, entry, entry)
  if #e == 0 then return nil end
  local snooze = false
  if snooze_limit > 0 then
    local snoozes = snoozes_in(e[1][2])
    snooze = snoozes < snooze_limit
    if not snooze then message = over_snoozed(snoozes) end
  end
  if not snooze and attempt >= max_attempts then return nil end
  local due = retry_entry(stream, KEYS[6], id_key_of(KEYS[2], job_id), entry, e[1][2], job_id,
    delivery, attempt, delay, message, now_ms(), snooze)
  ack_and_delete(stream, group, entry)
  return {snooze and 'snoozed' or 'retry', tostring(due)}
end

if (tonumber(ARGV[12]) or 0) > 0 and redis.call('EXISTS', KEYS[2]) == 0 then
  local retried = retry_without_record()
  if retried then return retried end
end

local adopted = adopt(KEYS[2], ARGV[9], ARGV[10], KEYS[1], ARGV[2], ARGV[8], ARGV[1], ARGV[3], 12)
if adopted ~= 'ok' then return {adopted} end
local f = redis.call('HMGET', KEYS[2], 'status', 'lease', 'id', 'attempts', 'max_attempts',
  'snoozes')
if f[1] == 'cancelled' then return {'cancelled'} end
if not f[1] then return {'missing'} end
if f[1] ~= 'running' or f[2] ~= ARGV[3] then return {'stale'} end

local now = now_ms()
local delay = tonumber(ARGV[5])
local attempts, max_attempts = tonumber(f[4]) or 0, tonumber(f[5]) or 1
ack_and_delete(KEYS[1], ARGV[2], ARGV[1])
if snooze_limit > 0 and delay >= 0 then
  local snoozes = tonumber(f[6]) or 0
  if snoozes < snooze_limit then
    -- Not an attempt: its count goes back, and the job waits for its time as scheduled.
    local due = now + delay
    redis.call('HINCRBY', KEYS[2], 'attempts', -1)
    redis.call('HINCRBY', KEYS[2], 'snoozes', 1)
    redis.call('HDEL', KEYS[2], 'lease')
    redis.call('ZADD', KEYS[3], due, f[3])
    redis.call('HSET', KEYS[2], 'status', 'scheduled', 'run_at', due, 'next_run_at', due)
    return {'snoozed', tostring(due)}
  end
  message = over_snoozed(snoozes)
end
note_error(KEYS[2], attempts, now, message)
if delay < 0 or attempts >= max_attempts then
  local reason = message
  if delay >= 0 then reason = reason .. ' (attempts spent: ' .. attempts .. ' of ' .. max_attempts .. ')' end
  bury(KEYS[2], KEYS[4], KEYS[5], f[3], reason, now, tonumber(ARGV[6]), tonumber(ARGV[7]))
  return {'dead', reason}
end

redis.call('HDEL', KEYS[2], 'lease')
if delay == 0 then
  local entry = redis.call('XADD', KEYS[1], '*', 'id', f[3])
  redis.call('HSET', KEYS[2], 'status', 'pending', 'error', message, 'entry', entry,
    'next_run_at', now)
  return {'retry', tostring(now)}
end
local due = now + delay
redis.call('ZADD', KEYS[3], due, f[3])
redis.call('HSET', KEYS[2], 'status', 'failed', 'error', message, 'next_run_at', due)
return {'retry', tostring(due)}
