-- holds: a worker settles its hold on a capped queue's slots: gives ARGV[2] of them back
-- and renews the lease of the rest (what its heartbeat does with ARGV[2] = 0).
-- KEYS[1] holders (worker → lease end, ms)   KEYS[2] holds (worker → slots)
-- ARGV[1] worker id   ARGV[2] slots given back   ARGV[3] the worker's lease in ms
-- Returns the slots it still holds, or -1 when it holds none here: its hold ended with
-- its lease (it stopped beating) and the slots went to others.
local held = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or -1)
if held < 0 then return -1 end
local left = held - tonumber(ARGV[2])
if left <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[2], ARGV[1], left)
redis.call('ZADD', KEYS[1], now_ms() + tonumber(ARGV[3]), ARGV[1])
return left
