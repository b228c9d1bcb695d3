-- progress: record a running attempt's progress, only while its lease is current (a
-- handler that lost its job must not write into the newer attempt's record).
-- KEYS[1] job record
-- ARGV[1] lease token   ARGV[2] progress (JSON)
-- Returns 1 if recorded, 0 if the lease is no longer current.
local f = redis.call('HMGET', KEYS[1], 'status', 'lease')
if f[1] ~= 'running' or f[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
return 1
