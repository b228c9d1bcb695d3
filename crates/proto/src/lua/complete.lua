-- complete: finish an attempt successfully, if its lease is still current (rule 3).
-- KEYS[1] stream   KEYS[2] job record   KEYS[3] completed index
-- ARGV[1] entry id   ARGV[2] group   ARGV[3] lease token   ARGV[4] result (JSON, may be empty)
-- ARGV[5] retention ms of finished records
-- Returns "ok", "stale" (lease lost: the result is dropped) or "cancelled".
local f = redis.call('HMGET', KEYS[2], 'status', 'lease', 'id')
if f[1] == 'cancelled' then return 'cancelled' end
if f[1] ~= 'running' or f[2] ~= ARGV[3] then return 'stale' end

local now = now_ms()
local retention = tonumber(ARGV[5])
redis.call('HSET', KEYS[2], 'status', 'completed', 'finished_at', now, 'result', ARGV[4])
redis.call('HDEL', KEYS[2], 'lease', 'error')
ack_and_delete(KEYS[1], ARGV[2], ARGV[1])
release_unique(KEYS[2], f[3])
if retention > 0 then redis.call('PEXPIRE', KEYS[2], retention) end
index_terminal(KEYS[3], f[3], now, retention)
return 'ok'
