-- complete: finish attempts of one queue successfully, a batch per call, each only while
-- the attempt is still current (rule 3): its lease matches its record, or, for a job on
-- the fast path (no record), its entry is pending under this worker with the delivery
-- count the attempt began with. The batch's completions are appended to the queue's `done`
-- stream as one entry (protocol 2.11), each a run of fields that begins with `id`: one
-- `XADD` for the batch rather than one per job. `done_sizes` notes how many each entry
-- holds, so that trimming keeps the most recent completions by count without reading
-- them.
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
-- Jobs of the batch that other jobs wait for (protocol 2.19), told once the batch is
-- written: one look at the queue's `hooked` set when none does.
local qp = queue_prefix_of(records)
local any_hooked = redis.call('SCARD', qp .. 'hooked') > 0
local ended = {}

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

-- The completions of the batch not yet written, as one entry's field/value pairs, and
-- the indices (in the id lists below) of the jobs among them with ids to remember.
-- The worker is named once, before the first `id`: what an entry holds there is every
-- completion's.
local pending, pending_count, pending_ids = {'worker', consumer}, 0, {}
-- Field/value items an entry may hold: Lua's `unpack` takes at most 8000 values, so a
-- batch whose completions (with long pasts) hold more is written as several entries.
local ENTRY_ITEMS = 6000

-- Jobs with an id of their own (or a retried one's) that completed in this batch: their
-- id keys, entries, ids and completions' entry ids in `done`, settled in three calls once
-- the batch is done.
local id_keys, id_entries, id_names, id_done = {}, {}, {}, {}
-- The `done` entries this call wrote, as `done_sizes` elements ("<entry id> <count>").
local written = {}

-- Writes the completions gathered so far as one `done` entry.
local function flush()
  if pending_count == 0 then return end
  local done_id = redis.call('XADD', done, '*', unpack(pending))
  written[#written + 1] = done_id .. ' ' .. pending_count
  for _, i in ipairs(pending_ids) do id_done[i] = done_id end
  pending, pending_count, pending_ids = {'worker', consumer}, 0, {}
end

-- Adds attempt `a`'s completion to the entry being gathered and marks its stream entry
-- for acknowledgement: `id` first, then `type`, then `attempts`, `run_ms` and `result`
-- unless at their defaults (1, 0, none), then `past` (field/value pairs, may be nil).
local function append_done(job_id, entry, a, past)
  local n = #pending
  pending[n + 1], pending[n + 2] = 'id', job_id
  pending[n + 3], pending[n + 4] = 'type', ARGV[a + 5]
  -- A field at its default is left out: one attempt, under a millisecond, no result.
  if ARGV[a + 6] ~= '1' then
    pending[#pending + 1], pending[#pending + 2] = 'attempts', ARGV[a + 6]
  end
  if ARGV[a + 7] ~= '0' then
    pending[#pending + 1], pending[#pending + 2] = 'run_ms', ARGV[a + 7]
  end
  if ARGV[a + 4] ~= '' then
    pending[#pending + 1], pending[#pending + 2] = 'result', ARGV[a + 4]
  end
  if past then
    for _, v in ipairs(past) do pending[#pending + 1] = v end
  end
  pending_count = pending_count + 1
  if entry ~= '' then done_entries[#done_entries + 1] = entry end
  completed = completed + 1
  if any_hooked then ended[#ended + 1] = {job_id, ARGV[a + 4]} end
end

-- The ids of the batch stop being held by their entries and are remembered as completed:
-- each id key that names the entry its job completed from goes, and the id joins
-- `done_ids` scored by the millisecond of its completion's entry in `done`: readers look
-- for the completion from that time on, and trimming `done` forgets the ids scored before
-- its first entry left. (Not by `now`: `XADD` reads the clock again and may number the
-- entry a millisecond later, or past a clock behind `done`'s last id, and the id would be
-- forgotten while its completion is kept.) A key naming anything else (an entry that
-- wrote `held` by hand while the id was another job's; a job deleted while it ran) is left
-- as it is: the id stays with its job. With a retention of 0 the id is forgotten at once.
local function remember_ids()
  if #id_keys == 0 then return end
  local held = redis.call('MGET', unpack(id_keys))
  local gone, scored = {}, {}
  local score_of = {}
  for i, key in ipairs(id_keys) do
    if held[i] == id_entries[i] then
      gone[#gone + 1] = key
      local done_id = id_done[i] or ''
      local score = score_of[done_id]
      if not score then
        local done_ms = id_parts(done_id)
        score = tostring(done_ms > 0 and done_ms or now)
        score_of[done_id] = score
      end
      scored[#scored + 1] = score
      scored[#scored + 1] = id_names[i]
    end
  end
  if #gone == 0 then return end
  redis.call('DEL', unpack(gone))
  if retention > 0 then redis.call('ZADD', KEYS[4], unpack(scored)) end
end

-- Notes the entries this call wrote in `done_sizes` and counts their completions in
-- `done_count`: `kept`, and `extra` (completions beyond one an entry holds, so that the
-- stream's `entries-added` plus it counts every completion ever); returns `kept`.
local function note_written()
  local sizes, counts = done_sizes_of(records), done_count_of(records)
  redis.call('RPUSH', sizes, unpack(written))
  redis.call('HINCRBY', counts, 'extra', completed - #written)
  return redis.call('HINCRBY', counts, 'kept', completed)
end

-- Keeps `done` to the newest `max` completions (0: no count limit), and at most one
-- entry's more, and to the retention, dropping whole entries, oldest first, as
-- `done_sizes` names them; and `done_ids` to the
-- ids whose completions are still there, so that ids are remembered as long as their
-- completions and memory stays bounded by count as well as by age. Entries no size names
-- (written one per completion by a worker before protocol 2.11) go by age.
local function trim_done(kept, max)
  local sizes = done_sizes_of(records)
  local limit = tonumber(max) or 0
  local cutoff = retention > 0 and now - retention or nil
  local last, dropped = nil, 0
  while true do
    local head = redis.call('LINDEX', sizes, 0)
    if not head then break end
    local id, n = string.match(head, '^(%S+) (%d+)$')
    n = tonumber(n) or 0
    -- Dropping the oldest entry still leaves the newest `limit` completions.
    local over = limit > 0 and kept - dropped - n >= limit
    local old = cutoff ~= nil and id_parts(id or '') < cutoff
    if not (over or old) then break end
    redis.call('LPOP', sizes)
    dropped = dropped + n
    last = id or last
  end
  if cutoff then redis.call('XTRIM', done, 'MINID', '~', cutoff) end
  if not last then return end
  redis.call('HINCRBY', done_count_of(records), 'kept', -dropped)
  local ms, seq = id_parts(last)
  redis.call('XTRIM', done, 'MINID', string.format('%d-%d', ms, seq + 1))
  local first = redis.call('LINDEX', sizes, 0)
  local keep_from = ms + 1
  if first then keep_from = id_parts(string.match(first, '^(%S+)') or '') end
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. string.format('%d', keep_from))
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
      append_done(named, entry, a, past)
      if job_id ~= '' then
        id_keys[#id_keys + 1] = ids .. job_id
        id_entries[#id_entries + 1] = entry
        id_names[#id_names + 1] = job_id
        pending_ids[#pending_ids + 1] = #id_keys
      end
      if #pending >= ENTRY_ITEMS then flush() end
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
      if #pending >= ENTRY_ITEMS then flush() end
      replies[#replies + 1] = 'ok'
    end
  end
end
flush()
ack_and_delete_all(stream, group, done_entries)
remember_ids()
-- Keep the index, the records and the done stream bounded by age and by count, once per
-- batch rather than once per completion.
if completed > 0 then trim_done(note_written(), max_len) end
if any_record then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - retention)
  trim_finished(KEYS[2], records, 'completed', tonumber(max_len))
end
for _, job in ipairs(ended) do
  settle_dependents(qp, job[1], 'completed', job[2], now, retention)
end
return table.concat(replies, ' ')
