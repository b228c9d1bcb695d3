-- leader_renew: compare-and-extend the scheduler lease, only while the epoch is ours.
-- KEYS[1] leader lease   KEYS[2] fencing epoch
-- ARGV[1] holder id   ARGV[2] lease ttl ms   ARGV[3] our epoch
-- Returns 1 if extended, 0 if the lease is no longer ours.
if redis.call('GET', KEYS[1]) == ARGV[1] and redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
