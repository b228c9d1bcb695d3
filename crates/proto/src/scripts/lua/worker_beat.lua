-- worker_beat: record a worker's heartbeat in the registry on the server's clock, so every
-- process compares heartbeats against one clock.
-- KEYS[1] workers sorted set   KEYS[2] the worker's hash
-- ARGV[1] worker id   ARGV[2] hash expiry ms   ARGV[3..] field/value pairs for the hash
-- Returns the heartbeat time in ms.
local now = now_ms()
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], 'heartbeat_at', now, unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return now
