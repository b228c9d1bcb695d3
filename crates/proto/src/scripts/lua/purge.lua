-- purge: delete finished jobs that ended before a cutoff (an operator's `jobs purge`):
-- their records while still in the purged status, their ids in that status's index,
-- and every entry of the status's stream (`done` or the dead-letter stream) older than
-- the cutoff. A record that left the status since (a dead job retried) is kept. A
-- completion of a job with an id of its own takes the job's id with it (from `done_ids`,
-- or the id key a 2.7 worker left naming the completion).
-- KEYS[1] the status's index   KEYS[2] its stream (`done` or dead-letter)
-- ARGV[1] record key prefix   ARGV[2] status   ARGV[3] cutoff ms   ARGV[4] ids per call
-- Returns {records deleted, completions or dead letters deleted (a `done` entry may hold
-- several completions), ids left older than the cutoff (more than 0 while `done` entries
-- older than it are left too)}.
local prefix, status, cutoff, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local records = 0
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. cutoff, 'LIMIT', 0, limit)
for _, id in ipairs(ids) do
  local key = prefix .. id
  if redis.call('HGET', key, 'status') == status then
    redis.call('DEL', key)
    records = records + 1
    -- A dead job whose children wait for an operator's retry of it (protocol 2.19) can
    -- no longer be retried: they hear it was deleted.
    if status == 'dead' then
      settle_dependents(queue_prefix_of(prefix), id, 'deleted', nil, now_ms(), 86400000)
    end
  end
  redis.call('ZREM', KEYS[1], id)
end
local entries, more = 0, 0
if status == 'completed' then
  -- `limit` completions per call, each looked at for an id key.
  local old = redis.call('XRANGE', KEYS[2], '-', tostring(cutoff - 1), 'COUNT', limit)
  local done, id_keys = {}, id_prefix_of(prefix)
  -- An entry may hold several completions (a worker's batch): each is counted.
  local completions = 0
  for _, e in ipairs(old) do
    done[#done + 1] = e[1]
    for i = 1, #e[2], 2 do
      if e[2][i] == 'id' then
        completions = completions + 1
        -- A key written by protocol 2.7, naming the completion.
        local id_key = id_keys .. e[2][i + 1]
        if redis.call('GET', id_key) == 'done ' .. e[1] then redis.call('DEL', id_key) end
      end
    end
  end
  -- The ids that completed without a record before the cutoff go with their completions.
  redis.call('ZREMRANGEBYSCORE', done_ids_of(prefix), '-inf', '(' .. cutoff)
  if #done > 0 then
    redis.call('XDEL', KEYS[2], unpack(done))
    forget_done_sizes(prefix, done[#done])
    entries = completions
  end
  if #old == limit then more = 1 end
else
  local before = redis.call('XLEN', KEYS[2])
  redis.call('XTRIM', KEYS[2], 'MINID', cutoff)
  entries = before - redis.call('XLEN', KEYS[2])
end
return {records, entries, redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. cutoff) + more}
