-- start: begin an attempt of the job behind a delivered stream entry (rules 2 and 3).
-- KEYS[1] stream   KEYS[2] job record   KEYS[3] dead stream   KEYS[4] dead index
-- ARGV[1] entry id   ARGV[2] job id   ARGV[3] group   ARGV[4] consumer   ARGV[5] lease token
-- ARGV[6] dead retention ms   ARGV[7] dead stream max length
-- For an entry XADDed by hand with no record yet (ARGV[8] non-empty), the record is made from:
-- ARGV[8] type   ARGV[9] payload   ARGV[10] content type   ARGV[11] max attempts
-- ARGV[12] timeout ms   ARGV[13] backoff   ARGV[14] queue name   ARGV[15] protocol version
-- Returns {"started", type, payload, content_type, attempts, max_attempts, timeout_ms, backoff, trace}
-- or {"dead", reason} (attempts spent: poison pill) or {"skipped", why}, the entry then
-- acknowledged and removed unless it is no longer ours ("not_owner") or names no known job
-- ("orphan", left for the caller to bury with a reason).
local stream, job, entry, job_id, group, consumer = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4]

-- A slow fetch may have lost the entry to a reclaimer in the meantime: never run it twice.
local pel = redis.call('XPENDING', stream, group, entry, entry, 1)
if #pel == 0 or pel[1][2] ~= consumer then return {'skipped', 'not_owner'} end

local now = now_ms()
if redis.call('EXISTS', job) == 0 then
  if ARGV[8] == '' then
    -- Names a job that has no record and says nothing to make one from: the caller buries it.
    return {'skipped', 'orphan'}
  end
  redis.call('HSET', job, 'id', job_id, 'type', ARGV[8], 'queue', ARGV[14], 'payload', ARGV[9],
    'content_type', ARGV[10], 'attempts', 0, 'max_attempts', ARGV[11], 'timeout_ms', ARGV[12],
    'backoff', ARGV[13], 'created_at', now, 'run_at', now, 'status', 'pending', 'entry', entry,
    'v', ARGV[15])
else
  local f = redis.call('HMGET', job, 'status', 'entry', 'worker', 'attempts')
  local status = f[1]
  if f[2] ~= entry then
    -- The same producer id XADDed twice, or an entry left behind: the job runs once.
    ack_and_delete(stream, group, entry)
    return {'skipped', 'duplicate'}
  end
  if status == 'completed' or status == 'dead' or status == 'cancelled' then
    ack_and_delete(stream, group, entry)
    return {'skipped', status}
  end
  if status == 'running' then
    -- Reclaimed from a worker that stopped responding mid-attempt.
    redis.call('HSET', job, 'error', 'attempt ' .. (f[4] or '?') .. ' interrupted: worker ' ..
      (f[3] or '?') .. ' stopped responding')
  end
end

local attempts = redis.call('HINCRBY', job, 'attempts', 1)
local max_attempts = tonumber(redis.call('HGET', job, 'max_attempts')) or 1
if attempts > max_attempts then
  redis.call('HSET', job, 'attempts', max_attempts)
  local last = redis.call('HGET', job, 'error')
  local reason = 'attempts spent (' .. max_attempts .. ' of ' .. max_attempts .. ')'
  if last and last ~= '' then reason = reason .. '; last error: ' .. last end
  bury(job, KEYS[3], KEYS[4], job_id, reason, now, tonumber(ARGV[6]), tonumber(ARGV[7]))
  ack_and_delete(stream, group, entry)
  return {'dead', reason}
end

redis.call('HSET', job, 'status', 'running', 'started_at', now, 'worker', consumer,
  'lease', ARGV[5])
local r = redis.call('HMGET', job, 'type', 'payload', 'content_type', 'attempts',
  'max_attempts', 'timeout_ms', 'backoff', 'trace')
return {'started', r[1] or '', r[2] or '', r[3] or '', r[4] or '0', r[5] or '1', r[6] or '0',
  r[7] or '', r[8] or ''}
