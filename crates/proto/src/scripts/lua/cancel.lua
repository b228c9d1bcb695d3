-- cancel: stop a job that has not finished. A running job's worker learns of it within a
-- second (the cancels counter it watches moves) and cancels the handler; its later
-- completion is ignored.
-- KEYS[1] stream   KEYS[2] job record   KEYS[3] delayed set   KEYS[4] cancelled index
-- KEYS[5] later set   KEYS[6] the queue's cancels counter
-- ARGV[1] group   ARGV[2] retention ms   ARGV[3] job id   ARGV[4] queue name
-- A fast-path job (no record: its id is its entry's, or its id key names its entry or
-- holds it while it waits in `later`) gets a cancelled record built from its entry.
-- A job waiting for its parents ends without running; jobs that wait for the cancelled job
-- hear of it as of any end (see `settle_dependents`).
-- Returns {"cancelled", previous status}, {"finished", status} or {"missing"} (no record
-- and no entry: it may have completed, which the caller looks up in `done`).
local f = redis.call('HMGET', KEYS[2], 'status', 'entry', 'id')
local status = f[1]
local qp = queue_prefix_of(job_prefix_of(KEYS[2], ARGV[3]))
if not status and redis.call('GET', id_key_of(KEYS[2], ARGV[3])) == 'waiting' then
  -- Waiting for its parents (protocol 2.19): it ends without running, and so do the jobs
  -- that wait for it under a `cancel` edge.
  local now, retention = now_ms(), tonumber(ARGV[2])
  end_waiting(qp, ARGV[3], 'cancelled', 'cancelled while waiting for its parents', now,
    retention)
  settle_dependents(qp, ARGV[3], 'cancelled', nil, now, retention)
  return {'cancelled', 'waiting'}
end
if not status then
  local job_id = ARGV[3]
  local held = redis.call('GET', id_key_of(KEYS[2], job_id))
  local waiting, fields = unpack_waiting(held)
  if waiting then
    -- Waiting in `later`: its record is built from the entry it would have become.
    redis.call('ZREM', KEYS[5], job_id)
    record_from_entry(KEYS[2], job_id, ARGV[4], '', fields, 0)
    status = waiting
    f = {waiting, '', job_id}
  end
end
if not status then
  -- Waiting its group's turn: its record is built from the entry it would have become.
  local fields = leave_group_line(KEYS[2], ARGV[3])
  if fields then
    record_from_entry(KEYS[2], ARGV[3], ARGV[4], '', fields, 0)
    status = 'pending'
    f = {'pending', '', ARGV[3]}
  end
end
if not status then
  local job_id = ARGV[3]
  local entry = job_id
  local held = redis.call('GET', id_key_of(KEYS[2], job_id))
  if held and is_entry_id(held) then
    entry = held
  elseif not is_entry_id(job_id) then
    return {'missing'}
  end
  local e = redis.call('XRANGE', KEYS[1], entry, entry)
  if #e == 0 then return {'missing'} end
  local own_id
  for i = 1, #e[1][2], 2 do
    if e[1][2][i] == 'id' or e[1][2][i] == 'retry_of' then own_id = e[1][2][i + 1] end
  end
  -- An entry naming its own job id stands for that job, not for the entry id.
  if own_id ~= (entry ~= job_id and job_id or nil) then return {'missing'} end
  -- No consumer group yet means no worker has read it: it is pending.
  local pel = redis.pcall('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  local was, attempts = 'pending', 0
  if not pel.err and #pel > 0 then was, attempts = 'running', pel[1][4] end
  record_from_entry(KEYS[2], job_id, ARGV[4], entry, e[1][2], attempts)
  status = was
  f = {was, entry, job_id}
end
if is_final(status) then
  return {'finished', status}
end
local now = now_ms()
if status == 'scheduled' or status == 'failed' then
  redis.call('ZREM', KEYS[3], f[3])
elseif f[2] and f[2] ~= '' then
  ack_and_delete(KEYS[1], ARGV[1], f[2])
elseif leave_group_line(KEYS[2], f[3]) then
  -- A job with a record waiting its group's turn (a unique one) has no entry yet.
  redis.call('DEL', id_key_of(KEYS[2], f[3]))
end
redis.call('HSET', KEYS[2], 'status', 'cancelled', 'finished_at', now)
redis.call('HDEL', KEYS[2], 'next_run_at')
release_unique(KEYS[2], f[3])
local retention = tonumber(ARGV[2])
if retention > 0 then redis.call('PEXPIRE', KEYS[2], retention) end
index_terminal(KEYS[4], f[3], now, retention)
if status == 'running' then redis.call('INCR', KEYS[6]) end
settle_dependents(qp, f[3], 'cancelled', nil, now, retention)
return {'cancelled', status}
