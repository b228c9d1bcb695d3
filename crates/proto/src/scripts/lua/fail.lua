-- fail: end an attempt with an error: retry now, retry later (via `delayed`) or go dead.
-- KEYS[1] stream   KEYS[2] job record   KEYS[3] delayed set   KEYS[4] dead stream
-- KEYS[5] dead index
-- ARGV[1] entry id   ARGV[2] group   ARGV[3] lease token   ARGV[4] error message
-- ARGV[5] retry delay ms (-1 = give up now)   ARGV[6] dead retention ms
-- ARGV[7] dead stream max length   ARGV[8] consumer   ARGV[9] job id   ARGV[10] queue name
-- then, from ARGV[11], what a fast-path attempt passes (see `adopt`): a job without a
-- record gets one here and is retried, or buried, through it.
-- Returns {"retry", due ms}, {"dead", reason}, {"stale"}, {"cancelled"} or {"missing"}.
local adopted = adopt(KEYS[2], ARGV[9], ARGV[10], KEYS[1], ARGV[2], ARGV[8], ARGV[1], ARGV[3], 11)
if adopted ~= 'ok' then return {adopted} end
local f = redis.call('HMGET', KEYS[2], 'status', 'lease', 'id', 'attempts', 'max_attempts')
if f[1] == 'cancelled' then return {'cancelled'} end
if not f[1] then return {'missing'} end
if f[1] ~= 'running' or f[2] ~= ARGV[3] then return {'stale'} end

local now = now_ms()
local delay = tonumber(ARGV[5])
local attempts, max_attempts = tonumber(f[4]) or 0, tonumber(f[5]) or 1
ack_and_delete(KEYS[1], ARGV[2], ARGV[1])
note_error(KEYS[2], attempts, now, ARGV[4])
if delay < 0 or attempts >= max_attempts then
  local reason = ARGV[4]
  if delay >= 0 then reason = reason .. ' (attempts spent: ' .. attempts .. ' of ' .. max_attempts .. ')' end
  bury(KEYS[2], KEYS[4], KEYS[5], f[3], reason, now, tonumber(ARGV[6]), tonumber(ARGV[7]))
  return {'dead', reason}
end

redis.call('HDEL', KEYS[2], 'lease')
if delay == 0 then
  local entry = redis.call('XADD', KEYS[1], '*', 'id', f[3])
  redis.call('HSET', KEYS[2], 'status', 'pending', 'error', ARGV[4], 'entry', entry,
    'next_run_at', now)
  return {'retry', tostring(now)}
end
local due = now + delay
redis.call('ZADD', KEYS[3], due, f[3])
redis.call('HSET', KEYS[2], 'status', 'failed', 'error', ARGV[4], 'next_run_at', due)
return {'retry', tostring(due)}
