-- Shared helpers, prepended to every Flotilla script (not a script of its own).

-- Redis server time in milliseconds, so every process agrees on "now".
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Acknowledge and remove a stream entry (rule 1: only together with a state change).
local function ack_and_delete(stream, group, entry)
  if entry and entry ~= '' then
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
  end
end

-- Release a unique-job lock, but only if this job still holds it.
local function release_unique(job_key, job_id)
  local unique_key = redis.call('HGET', job_key, 'unique_key')
  if unique_key and unique_key ~= '' and redis.call('GET', unique_key) == job_id then
    redis.call('DEL', unique_key)
  end
end

-- Acknowledge and remove many entries of one stream with one XACK and one XDEL: removing
-- ids one call at a time costs several times more.
local function ack_and_delete_all(stream, group, entries)
  if #entries > 0 then
    redis.call('XACK', stream, group, unpack(entries))
    redis.call('XDEL', stream, unpack(entries))
  end
end

-- A stream id as two numbers, for ordering.
local function id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms) or 0, tonumber(seq) or 0
end

-- The ids among `entries` (all of one stream) that are pending under `consumer`, as a
-- map from id to delivery count, read with one XPENDING over their range rather than one
-- call per entry.
local function owned_by(stream, group, consumer, entries)
  local owned = {}
  if #entries == 0 then return owned end
  local low, high = entries[1], entries[1]
  local lms, lseq = id_parts(low)
  local hms, hseq = lms, lseq
  for _, e in ipairs(entries) do
    local ms, seq = id_parts(e)
    if ms < lms or (ms == lms and seq < lseq) then low, lms, lseq = e, ms, seq end
    if ms > hms or (ms == hms and seq > hseq) then high, hms, hseq = e, ms, seq end
  end
  -- Only this consumer's entries in the range come back: at most what it has in flight.
  local pel = redis.call('XPENDING', stream, group, low, high, #entries + 100000, consumer)
  for _, p in ipairs(pel) do owned[p[1]] = p[4] end
  return owned
end

-- Record a terminal state in the recent-ids index and keep the index bounded by retention.
local function index_terminal(idx_key, job_id, now, retention)
  redis.call('ZADD', idx_key, now, job_id)
  redis.call('ZREMRANGEBYSCORE', idx_key, '-inf', now - retention)
end

-- Keep at most `max_len` finished records of one status: the oldest in the index beyond
-- that are deleted with their records, so memory stays bounded however fast jobs finish.
-- A record that left the status since (a dead job retried, say) is not touched.
-- `job_prefix` is the queue's record key up to the job id. 0 = no count limit.
local function trim_finished(idx_key, job_prefix, status, max_len)
  if max_len <= 0 then return end
  local over = redis.call('ZCARD', idx_key) - max_len
  if over <= 0 then return end
  for _, id in ipairs(redis.call('ZRANGE', idx_key, 0, over - 1)) do
    local key = job_prefix .. id
    if redis.call('HGET', key, 'status') == status then redis.call('DEL', key) end
  end
  redis.call('ZREMRANGEBYRANK', idx_key, 0, over - 1)
end

-- A record key up to its job id: the queue's prefix for records.
local function job_prefix_of(job_key, job_id)
  return string.sub(job_key, 1, #job_key - #job_id)
end

-- Move a job to the dead-letter queue: record, DLQ stream entry, index, expiry.
local function bury(job_key, dead_stream, idx_dead, job_id, reason, now, retention, dead_max_len)
  redis.call('HSET', job_key, 'status', 'dead', 'error', reason, 'finished_at', now)
  redis.call('HDEL', job_key, 'lease', 'next_run_at')
  local f = redis.call('HMGET', job_key, 'type', 'queue', 'attempts')
  redis.call('XADD', dead_stream, 'MAXLEN', '~', dead_max_len, '*',
    'id', job_id, 'type', f[1] or '', 'queue', f[2] or '', 'attempts', f[3] or '0',
    'error', reason, 'failed_at', now)
  if retention > 0 then
    redis.call('PEXPIRE', job_key, retention)
    -- The DLQ stream keeps what the records keep: entries older than the retention go.
    redis.call('XTRIM', dead_stream, 'MINID', now - retention)
  end
  index_terminal(idx_dead, job_id, now, retention)
  -- The dead-letter stream keeps `dead_max_len` entries; the records keep as many.
  trim_finished(idx_dead, job_prefix_of(job_key, job_id), 'dead', dead_max_len)
end
