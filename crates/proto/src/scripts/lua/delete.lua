-- delete: remove a job that is not running (an operator's `jobs delete`): its record,
-- its id in `delayed` or `later` and in every index, its stream entry while it waits, its
-- dead-letter and `done` entries when the caller found them, and its unique lock.
-- A running job is refused: cancel it first, so its worker is told to stop. Its id key,
-- or its place in `done_ids`, goes too, so the id may be used again.
-- KEYS[1] stream   KEYS[2] job record   KEYS[3] delayed set   KEYS[4] completed index
-- KEYS[5] dead index   KEYS[6] cancelled index   KEYS[7] dead stream   KEYS[8] done stream
-- KEYS[9] later set   KEYS[10] expired index
-- ARGV[1] group   ARGV[2] job id   ARGV[3] dead-letter entry id or ''
-- ARGV[4] done entry id or ''
-- ARGV[5] how long the records of jobs cancelled because this one was deleted are kept,
--         ms (protocol 2.19; absent: a day)
-- A `done` entry holding other jobs' completions too (a worker's batch, protocol 2.10)
-- loses only this job's: the others are written again as a new entry, each with the
-- `finished_at` its first entry's id said, since the new entry's id is later; its size in
-- `done_sizes` moves with it.
-- Returns {"deleted", status it had}, {"running"} or {"missing"}.
local job_id, dead_entry, done_entry = ARGV[2], ARGV[3], ARGV[4]

-- Whether the completion whose `id` field is at `i` of an entry's `fields` already says
-- when it finished (it was written again before).
local function has_finished_at(fields, i)
  for j = i + 2, #fields, 2 do
    if fields[j] == 'id' then return false end
    if fields[j] == 'finished_at' then return true end
  end
  return false
end
local status, entry = unpack(redis.call('HMGET', KEYS[2], 'status', 'entry'))
local id_key = id_key_of(KEYS[2], job_id)
local qp = queue_prefix_of(job_prefix_of(KEYS[2], job_id))
local retention = tonumber(ARGV[5]) or 86400000
if not status and redis.call('GET', id_key) == 'waiting' then
  -- Waiting for its parents (protocol 2.19): it goes with its dependencies, and the jobs
  -- that wait for it hear of it.
  redis.call('DEL', id_key)
  redis.call('DEL', qp .. 'deps:' .. job_id)
  redis.call('ZREM', qp .. 'waiting', job_id)
  settle_dependents(qp, job_id, 'deleted', nil, now_ms(), retention)
  return {'deleted', 'waiting'}
end
if not status then
  -- A fast-path job has no record: its entry is its id, or its id key names it or holds
  -- it while it waits in `later`.
  local held = redis.call('GET', id_key)
  local at = job_id
  if held and is_entry_id(held) then at = held end
  local waiting = unpack_waiting(held)
  if waiting then
    status = waiting
  elseif leave_group_line(KEYS[2], job_id) then
    status = 'pending'
  elseif is_entry_id(at) and #redis.call('XRANGE', KEYS[1], at, at) > 0 then
    status, entry = 'pending', at
  end
end
if not status and (done_entry ~= '' or
    redis.call('ZSCORE', done_ids_of(job_prefix_of(KEYS[2], job_id)), job_id)) then
  status = 'completed'
end
if not status and dead_entry ~= '' then status = 'dead' end
if not status then return {'missing'} end
if status == 'running' then return {'running'} end
if status == 'pending' and (not entry or entry == '') then
  -- A job with a record waiting its group's turn (a unique one) leaves its line.
  leave_group_line(KEYS[2], job_id)
end
if entry and entry ~= '' then
  -- Read by a worker and not yet finished: it is starting, so it counts as running.
  local pel = redis.pcall('XPENDING', KEYS[1], ARGV[1], entry, entry, 1)
  if not pel.err and #pel > 0 then return {'running'} end
  redis.call('XDEL', KEYS[1], entry)
end
release_unique(KEYS[2], job_id)
redis.call('DEL', KEYS[2], id_key)
redis.call('ZREM', done_ids_of(job_prefix_of(KEYS[2], job_id)), job_id)
redis.call('ZREM', KEYS[3], job_id)
redis.call('ZREM', KEYS[9], job_id)
for _, i in ipairs({4, 5, 6, 10}) do redis.call('ZREM', KEYS[i], job_id) end
if dead_entry ~= '' then redis.call('XDEL', KEYS[7], dead_entry) end
-- This job's completion leaves `done`; the other completions its entry holds are kept.
local function remove_completion(done, at)
  local e = redis.call('XRANGE', done, at, at)
  if #e == 0 then return end
  local fields, kept, mine, others = e[1][2], {}, false, 0
  for i = 1, #fields, 2 do
    if fields[i] == 'id' then
      mine = fields[i + 1] == job_id
      if not mine then others = others + 1 end
    end
    if not mine then
      kept[#kept + 1] = fields[i]
      kept[#kept + 1] = fields[i + 1]
      if fields[i] == 'id' and not has_finished_at(fields, i) then
        kept[#kept + 1] = 'finished_at'
        kept[#kept + 1] = tostring(id_parts(at))
      end
    end
  end
  redis.call('XDEL', done, at)
  local again = others > 0 and redis.call('XADD', done, '*', unpack(kept))
  -- The entry's size in `done_sizes` (protocol 2.11) follows it.
  local records = job_prefix_of(KEYS[2], job_id)
  if redis.call('LREM', done_sizes_of(records), 1, at .. ' ' .. (others + 1)) == 1 then
    redis.call('HINCRBY', done_count_of(records), 'kept', -1)
    if again then
      redis.call('RPUSH', done_sizes_of(records), again .. ' ' .. others)
      -- The new entry holds completions already counted: `entries-added` plus `extra`
      -- stays the number of completions ever written.
      redis.call('HINCRBY', done_count_of(records), 'extra', -1)
    end
  end
end
if done_entry ~= '' then remove_completion(KEYS[8], done_entry) end
settle_dependents(qp, job_id, 'deleted', nil, now_ms(), retention)
return {'deleted', status}
