-- progress: record a running attempt's progress, only while it is current (a handler that
-- lost its job must not write into the newer attempt's record). A fast-path job gets its
-- record here, so that progress has a place to live.
-- KEYS[1] job record   KEYS[2] stream
-- ARGV[1] lease token   ARGV[2] progress (JSON)   ARGV[3] group   ARGV[4] consumer
-- ARGV[5] entry id   ARGV[6] job id   ARGV[7] queue name
-- then, from ARGV[8], what a fast-path attempt passes (see `adopt`)
-- Returns 1 if recorded, 0 if the attempt is no longer current.
if adopt(KEYS[1], ARGV[6], ARGV[7], KEYS[2], ARGV[3], ARGV[4], ARGV[5], ARGV[1], 8) ~= 'ok' then
  return 0
end
local f = redis.call('HMGET', KEYS[1], 'status', 'lease')
if f[1] ~= 'running' or f[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2])
return 1
