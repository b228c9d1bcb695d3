-- requeue: put a job back on its stream when reconciliation finds it stranded. The
-- attempt it was on stays counted (it may have crashed its worker: rule 2).
-- KEYS[1] stream   KEYS[2] job record (of ARGV[5]'s job, or any key of the queue when unknown)
-- KEYS[3] delayed set
-- ARGV[1] group   ARGV[2] reason   ARGV[3] mode   ARGV[4] consumer (dead_consumer mode)
-- ARGV[5] entry id (dead_consumer mode)   ARGV[6] queue name   ARGV[7] job id
-- Modes:
--   orphan_running  the record says running but its entry is no longer pending
--   orphan_pending  the record says pending but its entry is gone from the stream
--   orphan_scheduled  the record says scheduled or failed but is missing from `delayed`:
--                   it goes back there, due when it was (or now)
--   orphan_waiting  the id key of ARGV[7]'s job holds the entry it becomes (no record) but
--                   the job is missing from `later`: it goes back there, due when it was
--                   to run (or now)
--   dead_consumer   an entry pending under a consumer whose worker is gone
-- Returns "requeued", "copied" (an entry with no record was re-added as it was), "lost"
-- (an entry with no record whose data was deleted: nothing is left to run), "dropped" (a
-- duplicate entry of a job that moved on) or "unchanged" (nothing stranded).
local stream, job, group, reason, mode = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]

local function requeue_record(old_entry)
  local f = redis.call('HMGET', job, 'id', 'attempts', 'status')
  local entry = redis.call('XADD', stream, '*', 'id', f[1])
  redis.call('HSET', job, 'status', 'pending', 'entry', entry, 'error', reason)
  -- An attempt that was running ended here: it joins the record's history of errors.
  if f[3] == 'running' then note_error(job, f[2], now_ms(), reason) end
  redis.call('HDEL', job, 'lease', 'worker')
  ack_and_delete(stream, group, old_entry)
  return 'requeued'
end

local function pending_owner(entry)
  if not entry or entry == '' then return nil end
  local pel = redis.call('XPENDING', stream, group, entry, entry, 1)
  if #pel == 0 then return nil end
  return pel[1][2]
end

if mode == 'orphan_waiting' then
  local job_id, later = ARGV[7], later_of(KEYS[3])
  local _, fields = unpack_waiting(redis.call('GET', id_key_of(job, job_id)))
  if not fields or redis.call('ZSCORE', later, job_id) then return 'unchanged' end
  local due = now_ms()
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'run_at' and whole_within(fields[i + 1], MAX_RUN_AT_MS) then
      due = tonumber(fields[i + 1])
    end
  end
  redis.call('ZADD', later, due, job_id)
  return 'requeued'
end

local f = redis.call('HMGET', job, 'status', 'entry')
if mode == 'orphan_scheduled' then
  if f[1] ~= 'scheduled' and f[1] ~= 'failed' then return 'unchanged' end
  local w = redis.call('HMGET', job, 'id', 'next_run_at', 'run_at')
  if not w[1] or redis.call('ZSCORE', KEYS[3], w[1]) then return 'unchanged' end
  local due = tonumber(w[2]) or tonumber(w[3]) or now_ms()
  if not whole_within(due, MAX_RUN_AT_MS) then due = now_ms() end
  redis.call('ZADD', KEYS[3], due, w[1])
  redis.call('HSET', job, 'error', reason)
  return 'requeued'
end
if mode == 'orphan_running' then
  if f[1] ~= 'running' or pending_owner(f[2]) then return 'unchanged' end
  return requeue_record(f[2])
elseif mode == 'orphan_pending' then
  if f[1] ~= 'pending' then return 'unchanged' end
  if f[2] and f[2] ~= '' and #redis.call('XRANGE', stream, f[2], f[2]) > 0 then return 'unchanged' end
  return requeue_record(f[2])
end

-- dead_consumer
local entry = ARGV[5]
if pending_owner(entry) ~= ARGV[4] then return 'unchanged' end
if f[1] and f[2] == entry and (f[1] == 'running' or f[1] == 'pending') then
  return requeue_record(entry)
end
if not f[1] then
  -- No record: a fast-path job (whole in its entry) whose worker died. Add its fields
  -- again so a live worker gets it, charged the deliveries it had (rule 2: a job that
  -- crashed its worker must not run for ever). A copy of a job without an id of its own
  -- keeps its job id (its entry's) in `id`; one with an id of its own moves its id key to
  -- the copy.
  local e = redis.call('XRANGE', stream, entry, entry)
  local pel = redis.call('XPENDING', stream, group, entry, entry, 1)
  ack_and_delete(stream, group, entry)
  if #e == 0 then return 'lost' end
  local fields, has_id, attempts, copy = e[1][2], false, 0, {}
  local own_id
  for i = 1, #fields, 2 do
    if fields[i] == 'id' or fields[i] == 'retry_of' then has_id, own_id = true, fields[i + 1] end
    if fields[i] == 'attempts' then
      attempts = tonumber(fields[i + 1]) or 0
    elseif fields[i] ~= 'held' then
      copy[#copy + 1] = fields[i]
      copy[#copy + 1] = fields[i + 1]
    end
  end
  local deliveries = 0
  if #pel > 0 then deliveries = pel[1][4] end
  if not has_id then
    copy[#copy + 1] = 'id'
    copy[#copy + 1] = entry
  end
  if attempts + deliveries > 0 then
    copy[#copy + 1] = 'attempts'
    copy[#copy + 1] = attempts + deliveries
  end
  -- The copy holds the id when the key named the original (`held`: no claim needed);
  -- otherwise a worker claims it, and the key decides.
  local id_key = has_id and id_key_of(job, own_id)
  local holds = id_key and redis.call('GET', id_key) == entry
  if holds then
    copy[#copy + 1] = 'held'
    copy[#copy + 1] = '1'
  end
  local copied = redis.call('XADD', stream, '*', unpack(copy))
  if has_id then
    if holds then redis.call('SET', id_key, copied, 'KEEPTTL') end
    return 'copied'
  end
  -- A fast-path job gets its record, so it can be found and told why it ran again.
  record_from_entry(job, entry, ARGV[6], entry, fields, deliveries)
  redis.call('HSET', job, 'status', 'pending', 'entry', copied, 'error', reason)
  note_error(job, attempts + deliveries, now_ms(), reason)
  return 'requeued'
end
ack_and_delete(stream, group, entry)
return 'dropped'
