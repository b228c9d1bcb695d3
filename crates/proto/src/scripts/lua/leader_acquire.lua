-- leader_acquire: take the scheduler lease if it is free, or confirm we hold it.
-- A fresh acquisition increments the fencing epoch.
-- KEYS[1] leader lease   KEYS[2] fencing epoch
-- ARGV[1] holder id   ARGV[2] lease ttl ms
-- Returns {1, epoch} (acquired now), {2, epoch} (already ours, extended) or
-- {0, epoch, holder, remaining ms} (someone else leads).
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, redis.call('INCR', KEYS[2])}
end
local holder = redis.call('GET', KEYS[1])
local epoch = tonumber(redis.call('GET', KEYS[2]) or '0')
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {2, epoch}
end
return {0, epoch, holder or '', redis.call('PTTL', KEYS[1])}
