-- purge: delete finished jobs that ended before a cutoff (an operator's `jobs purge`):
-- their records while still in the purged status, their ids in that status's index,
-- and every entry of the status's stream (`done` or the dead-letter stream) older than
-- the cutoff. A record that left the status since (a dead job retried) is kept.
-- KEYS[1] the status's index   KEYS[2] its stream (`done` or dead-letter)
-- ARGV[1] record key prefix   ARGV[2] status   ARGV[3] cutoff ms   ARGV[4] ids per call
-- Returns {records deleted, stream entries deleted, ids left older than the cutoff}.
local prefix, status, cutoff, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local records = 0
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  local key = prefix .. id
  if redis.call('HGET', key, 'status') == status then
    redis.call('DEL', key)
    records = records + 1
  end
  redis.call('ZREM', KEYS[1], id)
end
local before = redis.call('XLEN', KEYS[2])
redis.call('XTRIM', KEYS[2], 'MINID', cutoff)
local entries = before - redis.call('XLEN', KEYS[2])
return {records, entries, redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. cutoff)}
