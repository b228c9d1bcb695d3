-- complete: finish attempts of one queue successfully, a batch per call, each only if its
-- lease is still current (rule 3).
-- KEYS[1] stream   KEYS[2] completed index   KEYS[2+i] job record of attempt i
-- ARGV[1] group   ARGV[2] retention ms of finished records
-- ARGV[3] completed records kept at most (0 = no count limit)
-- then 3 values per attempt i, from ARGV[4 + 3*(i-1)]: entry id, lease token, result
-- (JSON, may be empty)
-- Returns one word per attempt: "ok", "stale" (lease lost: the result is dropped),
-- "cancelled" or "missing" (no record: Redis lost its data, or the record was deleted).
local group, retention, max_len = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local replies = {}
local completed = 0
local done_entries = {}
local prefix
for i = 3, #KEYS do
  local job, a = KEYS[i], 4 + 3 * (i - 3)
  local f = redis.call('HMGET', job, 'status', 'lease', 'id', 'unique_key')
  if f[1] == 'cancelled' then
    replies[#replies + 1] = 'cancelled'
  elseif not f[1] then
    replies[#replies + 1] = 'missing'
  elseif f[1] ~= 'running' or f[2] ~= ARGV[a + 1] then
    replies[#replies + 1] = 'stale'
  else
    redis.call('HSET', job, 'status', 'completed', 'finished_at', now, 'result', ARGV[a + 2])
    redis.call('HDEL', job, 'lease', 'error')
    if ARGV[a] ~= '' then done_entries[#done_entries + 1] = ARGV[a] end
    if f[4] and f[4] ~= '' and redis.call('GET', f[4]) == f[3] then redis.call('DEL', f[4]) end
    if retention > 0 then redis.call('PEXPIRE', job, retention) end
    redis.call('ZADD', KEYS[2], now, f[3])
    completed = completed + 1
    prefix = prefix or job_prefix_of(job, f[3])
    replies[#replies + 1] = 'ok'
  end
end
ack_and_delete_all(KEYS[1], group, done_entries)
-- Keep the index and the records bounded by age and by count, once per batch.
if completed > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - retention)
  trim_finished(KEYS[2], prefix, 'completed', max_len)
end
return replies
