-- complete: finish attempts of one queue successfully, a batch per call, each only while
-- the attempt is still current (rule 3): its lease matches its record, or, for a job on
-- the fast path (no record), its entry is pending under this worker with the delivery
-- count the attempt began with. Every completion is appended to the queue's `done`
-- stream, which keeps the most recent ones.
-- KEYS[1] stream   KEYS[2] completed index   KEYS[3] done stream   KEYS[3+i] record of attempt i
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] retention ms of finished jobs
-- ARGV[4] finished jobs kept at most (0 = no count limit)
-- ARGV[5], ARGV[6] the lowest and highest entry id of the fast-path attempts (empty: none)
-- then 7 values per attempt i, from ARGV[7 + 7*(i-1)]: entry id, lease token, result (JSON,
-- may be empty), delivery count (0 = the attempt has a record), type, attempt, run time ms
-- A fast-path attempt that wrote a record (it reported progress) is passed with count 0.
-- Returns one word per attempt: "ok", "stale" (no longer this attempt's: the result is
-- dropped), "cancelled" or "missing" (its record is gone: Redis lost its data, or the
-- record was deleted).
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local retention, max_len = tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local first = 3
local replies = {}
local completed = 0
local done_entries = {}
local prefix

-- The fast-path entries of the batch still pending under this worker, in one read.
local owned = owned_in(stream, group, consumer, ARGV[5], ARGV[6], #KEYS)

local function record_done(job_id, a)
  local fields = {'id', job_id, 'type', ARGV[a + 4], 'attempts', ARGV[a + 5],
    'worker', consumer, 'run_ms', ARGV[a + 6], 'result', ARGV[a + 2]}
  if max_len > 0 then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', max_len, '*', unpack(fields))
  else
    redis.call('XADD', KEYS[3], '*', unpack(fields))
  end
  done_entries[#done_entries + 1] = ARGV[a]
  completed = completed + 1
end

for i = first + 1, #KEYS do
  local job, a = KEYS[i], 7 + 7 * (i - first - 1)
  local delivery = tonumber(ARGV[a + 3])
  if delivery ~= 0 then
    -- No record: a fast-path job, current while its entry is ours at its delivery count.
    -- Nothing else is read for it unless it is not.
    if owned[ARGV[a]] == delivery then
      record_done(ARGV[a], a)
      replies[#replies + 1] = 'ok'
    elseif was_cancelled(job) then
      replies[#replies + 1] = 'cancelled'
    else
      replies[#replies + 1] = not_current(stream, ARGV[a])
    end
  else
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
      if f[4] and f[4] ~= '' and redis.call('GET', f[4]) == f[3] then redis.call('DEL', f[4]) end
      if retention > 0 then redis.call('PEXPIRE', job, retention) end
      redis.call('ZADD', KEYS[2], now, f[3])
      prefix = prefix or job_prefix_of(job, f[3])
      record_done(f[3], a)
      replies[#replies + 1] = 'ok'
    end
  end
end
local entries = {}
for _, e in ipairs(done_entries) do if e ~= '' then entries[#entries + 1] = e end end
ack_and_delete_all(stream, group, entries)
-- Keep the index, the records and the done stream bounded by age and by count, once per
-- batch.
if completed > 0 and retention > 0 then
  redis.call('XTRIM', KEYS[3], 'MINID', '~', now - retention)
end
if prefix then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - retention)
  trim_finished(KEYS[2], prefix, 'completed', max_len)
end
return replies
