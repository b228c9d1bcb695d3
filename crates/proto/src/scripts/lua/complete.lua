-- complete: finish attempts of one queue successfully, a batch per call, each only while
-- the attempt is still current (rule 3): its lease matches its record, or, for a job on
-- the fast path (no record), its entry is pending under this worker with the delivery
-- count the attempt began with. Every completion is appended to the queue's `done`
-- stream, which keeps the most recent ones.
-- KEYS[1] stream   KEYS[2] completed index   KEYS[3] done stream   KEYS[4] done ids
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] retention ms of finished jobs
-- ARGV[4] finished jobs kept at most (0 = no count limit)
-- ARGV[5], ARGV[6] the lowest and highest entry id of the fast-path attempts (empty: none)
-- ARGV[7] the queue's record key prefix (a record key is the prefix and the job id; it
-- shares the declared keys' hash tag; so do id keys)
-- then 8 values per attempt, from ARGV[8 + 8*(i-1)]: job id (empty on the fast path when
-- it is the entry id), entry id, delivery count (the fast path's fence; 0 for an attempt
-- with a record), lease token (the fence of an attempt with a record), result (JSON, may
-- be empty), type, attempt, run time ms.
-- A fast-path attempt that wrote a record (it reported progress) is passed with its lease.
-- A fast-path job with an id of its own (or a retried one's) leaves its id key for
-- `done_ids` (protocol 2.8), which remembers it as long as its completion.
-- Every value is passed on as the string it came as: each conversion of a number back to
-- text would cost a formatting call per job.
-- Returns one word per attempt, separated by spaces in one string (one reply value for
-- the batch, not one per job): "ok", "stale" (no longer this attempt's: the result is
-- dropped), "cancelled" or "missing" (its record is gone: Redis lost its data, or the
-- record was deleted).
local stream, done, group, consumer = KEYS[1], KEYS[3], ARGV[1], ARGV[2]
local retention, max_len = tonumber(ARGV[3]), ARGV[4]
local records = ARGV[7]
local now = now_ms()
local replies = {}
local completed = 0
local done_entries = {}
local any_record = false

-- The fast-path entries of the batch still pending under this worker, in one read.
local owned = owned_in(stream, group, consumer, ARGV[5], ARGV[6], (#ARGV - 7) / 8)
local ids = id_prefix_of(records)

-- What a retried job's entry says of its past (its first enqueue, its attempts allowed,
-- its errors), to keep in its completion: without a record, nothing else remembers it.
local function past_of(entry)
  local kept = {}
  local e = redis.call('XRANGE', stream, entry, entry)
  if #e == 0 then return kept end
  local f = e[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'errors' or f[i] == 'created_at' or f[i] == 'max_attempts' then
      kept[#kept + 1] = f[i]
      kept[#kept + 1] = f[i + 1]
    end
  end
  return kept
end

-- Appends attempt `a`'s completion to `done` and marks its entry for acknowledgement;
-- returns the completion's id in `done`.
-- `past` (field/value pairs, may be nil) goes after the fields every completion has, which
-- keep their places (`id` first, `attempts` third). Without a past, the fields go straight
-- into the call: no table to build and unpack for each job.
local function append_done(job_id, entry, a, past)
  local done_id
  if past then
    local fields = {'id', job_id, 'type', ARGV[a + 5], 'attempts', ARGV[a + 6],
      'worker', consumer, 'run_ms', ARGV[a + 7], 'result', ARGV[a + 4]}
    for _, v in ipairs(past) do fields[#fields + 1] = v end
    done_id = redis.call('XADD', done, '*', unpack(fields))
  else
    done_id = redis.call('XADD', done, '*', 'id', job_id, 'type', ARGV[a + 5], 'attempts', ARGV[a + 6],
      'worker', consumer, 'run_ms', ARGV[a + 7], 'result', ARGV[a + 4])
  end
  if entry ~= '' then done_entries[#done_entries + 1] = entry end
  completed = completed + 1
  return done_id
end

-- Jobs with an id of their own (or a retried one's) that completed in this batch: their
-- id keys, entries, ids and completions' ids, settled in three calls once the batch is done.
local id_keys, id_entries, id_names, id_done = {}, {}, {}, {}

-- The ids of the batch stop being held by their entries and are remembered as completed:
-- each id key that names the entry its job completed from goes, and the id joins
-- `done_ids` scored by the time of its completion in `done`: readers look for the
-- completion from that time on, and trimming `done` forgets the ids scored before its
-- first entry left. (Not by `now`: `XADD` reads the clock again and may number the
-- completion a millisecond later, or past a clock behind `done`'s last id, and the id would
-- be forgotten while its completion is kept.) A key naming anything else (an entry that
-- wrote `held` by hand while the id was another job's; a job deleted while it ran) is left
-- as it is: the id stays with its job. With a retention of 0 the id is forgotten at once.
local function remember_ids()
  if #id_keys == 0 then return end
  local held = redis.call('MGET', unpack(id_keys))
  local gone, scored = {}, {}
  for i, key in ipairs(id_keys) do
    if held[i] == id_entries[i] then
      gone[#gone + 1] = key
      local done_ms = id_parts(id_done[i] or '')
      scored[#scored + 1] = tostring(done_ms > 0 and done_ms or now)
      scored[#scored + 1] = id_names[i]
    end
  end
  if #gone == 0 then return end
  redis.call('DEL', unpack(gone))
  if retention > 0 then redis.call('ZADD', KEYS[4], unpack(scored)) end
end

-- Keeps `done` to `max` entries (0: no count limit) and to the retention, and
-- `done_ids` to the ids whose completions are still there, so that ids are remembered as
-- long as their completions and memory stays bounded by count as well as by age.
local function trim_done(max)
  local trimmed = 0
  if max ~= '0' then trimmed = redis.call('XTRIM', done, 'MAXLEN', max) end
  if retention > 0 then
    trimmed = trimmed + redis.call('XTRIM', done, 'MINID', '~', now - retention)
  end
  if trimmed == 0 then return end
  local first = redis.call('XRANGE', done, '-', '+', 'COUNT', 1)[1]
  if first then
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. id_parts(first[1]))
  else
    redis.call('DEL', KEYS[4])
  end
end

for a = 8, #ARGV, 8 do
  local job_id, entry, delivery = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2]) or 0
  if delivery > 0 then
    -- No record: a fast-path job, current while its entry is ours at its delivery count.
    -- Nothing else is read for it unless it is not.
    local named = job_id ~= '' and job_id or entry
    if owned[entry] == delivery then
      -- An attempt numbered past its deliveries ran from an entry that carries attempts
      -- spent before (a retry, a requeued copy): its past is kept with its completion.
      local past = nil
      if ARGV[a + 6] ~= ARGV[a + 2] then past = past_of(entry) end
      local done_id = append_done(named, entry, a, past)
      if job_id ~= '' then
        id_keys[#id_keys + 1] = ids .. job_id
        id_entries[#id_entries + 1] = entry
        id_names[#id_names + 1] = job_id
        id_done[#id_done + 1] = done_id
      end
      replies[#replies + 1] = 'ok'
    elseif was_cancelled(records .. named) then
      replies[#replies + 1] = 'cancelled'
    else
      replies[#replies + 1] = not_current(stream, entry)
    end
  else
    local job = records .. job_id
    local f = redis.call('HMGET', job, 'status', 'lease', 'unique_key')
    if f[1] == 'cancelled' then
      replies[#replies + 1] = 'cancelled'
    elseif not f[1] then
      replies[#replies + 1] = 'missing'
    elseif f[1] ~= 'running' or f[2] ~= ARGV[a + 3] then
      replies[#replies + 1] = 'stale'
    else
      redis.call('HSET', job, 'status', 'completed', 'finished_at', now, 'result', ARGV[a + 4])
      redis.call('HDEL', job, 'lease', 'error')
      if f[3] and f[3] ~= '' and redis.call('GET', f[3]) == job_id then redis.call('DEL', f[3]) end
      if retention > 0 then redis.call('PEXPIRE', job, retention) end
      redis.call('ZADD', KEYS[2], now, job_id)
      any_record = true
      append_done(job_id, entry, a)
      replies[#replies + 1] = 'ok'
    end
  end
end
ack_and_delete_all(stream, group, done_entries)
remember_ids()
-- Keep the index, the records and the done stream bounded by age and by count, once per
-- batch rather than once per completion.
if completed > 0 then trim_done(max_len) end
if any_record then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - retention)
  trim_finished(KEYS[2], records, 'completed', tonumber(max_len))
end
return table.concat(replies, ' ')
