-- cancel: stop a job that has not finished. A running job's worker learns of it at its
-- next heartbeat and cancels the handler; its later completion is ignored.
-- KEYS[1] stream   KEYS[2] job record   KEYS[3] delayed set   KEYS[4] cancelled index
-- ARGV[1] group   ARGV[2] retention ms
-- Returns {"cancelled", previous status}, {"finished", status} or {"missing"}.
local f = redis.call('HMGET', KEYS[2], 'status', 'entry', 'id')
local status = f[1]
if not status then return {'missing'} end
if status == 'completed' or status == 'dead' or status == 'cancelled' then
  return {'finished', status}
end
local now = now_ms()
if status == 'scheduled' or status == 'failed' then
  redis.call('ZREM', KEYS[3], f[3])
else
  ack_and_delete(KEYS[1], ARGV[1], f[2])
end
redis.call('HSET', KEYS[2], 'status', 'cancelled', 'finished_at', now)
redis.call('HDEL', KEYS[2], 'next_run_at')
release_unique(KEYS[2], f[3])
local retention = tonumber(ARGV[2])
if retention > 0 then redis.call('PEXPIRE', KEYS[2], retention) end
index_terminal(KEYS[4], f[3], now, retention)
return {'cancelled', status}
