-- promote: move due jobs from `delayed` onto their stream (rule 7). Safe to run from any
-- number of processes: only the caller whose ZREM removed an id enqueues it.
-- A job that has waited for its time in `delayed` and never ran, with an id of its own and
-- no unique key (its record says `fast`: written by an older producer, or by `start` for a
-- raw entry due later), leaves its record behind: its entry carries the whole
-- job, and its id key names the entry, as for a job enqueued to run now. Any other job
-- (a retry, a unique job) goes on with its record.
-- A job waiting in `later` (no record: its id key holds the entry it becomes) is added
-- to its stream as that entry, and its id key names the entry from then on; a job of a
-- group whose time came waits its group's turn first, as a new one does.
-- KEYS[1] delayed set   KEYS[2] stream   KEYS[3] later set
-- ARGV[1] job key prefix (same hash tag as KEYS)   ARGV[2] batch limit (of each set)
-- ARGV[3] optional: ms until a group that waits for room in its window is looked at
-- again (the caller's pass interval; default 250)
-- Then looks at the queue's waiting groups that are due (see `group_fill`). A job of a
-- group whose queue limits each group's rate (protocol 2.18) takes a turn of it as it
-- comes due, or waits in its set for its group's next turn.
-- Returns {the number of jobs promoted, ms until the next job left waiting is due (-1:
-- none)}.
local now = now_ms()
local ids_prefix = id_prefix_of(ARGV[1])
local limit = tonumber(ARGV[2])
local recheck = tonumber(ARGV[3])
local qp = queue_prefix_of(ARGV[1])
local limits_cache = {}
local promoted = 0

-- The group of a job's entry fields (nil for none), and whether it ran before (a retry
-- or a snooze: its entry counts its `attempts`).
local function group_in(fields)
  local group, ran = nil, false
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'group' and fields[i + 1] ~= '' then group = fields[i + 1] end
    if fields[i] == 'attempts' then ran = true end
  end
  return group, ran
end

-- `later` first: for the batch one read of the due ids, one removal, one read of their id
-- keys and one write of the entries they name from then on; per job only its entry.
local waiting = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, limit)
if #waiting > 0 then
  call_spread('ZREM', KEYS[3], waiting)
  local keys = {}
  for i, id in ipairs(waiting) do keys[i] = ids_prefix .. id end
  local values = call_spread('MGET', nil, keys)
  local writes = {}
  for i = 1, #keys do
    local _, fields = unpack_waiting(values[i])
    local group, ran = nil, false
    if fields then group, ran = group_in(fields) end
    if group and ran then
      -- A retry or a snooze keeps its place in its group; a rate gives it a turn first.
      if group_turn_for_due(qp, group, KEYS[3], waiting[i]) > 0 then fields = nil end
    elseif group and wait_group_turn(qp, waiting[i], keys[i], group, fields, now,
        group_limits(limits_cache, qp)) then
      -- Its time came: now it waits its group's turn, as a new job does.
      fields = nil
    end
    if fields then
      fields[#fields + 1] = 'held'
      fields[#fields + 1] = '1'
      writes[#writes + 1] = keys[i]
      writes[#writes + 1] = redis.call('XADD', KEYS[2], '*', unpack(fields))
      promoted = promoted + 1
    end
  end
  if #writes > 0 then call_spread('MSET', nil, writes) end
end

local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit)

-- The whole job of a record that may run without it, as entry fields (nil otherwise), and
-- the record's status.
local function whole_entry(job, id)
  local f = redis.call('HMGET', job, 'status', 'fast', 'attempts', 'type', 'payload',
    'content_type', 'max_attempts', 'timeout_ms', 'backoff', 'trace', 'run_at', 'snoozes',
    'expires_at', 'group')
  if f[1] ~= 'scheduled' or f[2] ~= '1' or (tonumber(f[3]) or 0) ~= 0 or is_entry_id(id) then
    return nil, f[1], f[14]
  end
  local fields = {'id', id, 'type', f[4] or '', 'payload', f[5] or '', 'held', '1'}
  for _, extra in ipairs({{'content_type', f[6]}, {'max_attempts', f[7]}, {'timeout', f[8]},
      {'backoff', f[9]}, {'trace', f[10]}, {'run_at', f[11]}, {'snoozes', f[12]},
      {'expires_at', f[13]}}) do
    if extra[2] and extra[2] ~= '' and extra[2] ~= '0' then
      fields[#fields + 1] = extra[1]
      fields[#fields + 1] = extra[2]
    end
  end
  return fields, f[1], f[14]
end

for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local job = ARGV[1] .. id
    local whole, status, group = whole_entry(job, id)
    if group == '' then group = nil end
    if group and not whole and status == 'scheduled'
        and redis.call('SISMEMBER', qp .. 'group_flight:' .. group, id) == 0 then
      -- A job of a group with a record whose time came (a unique one) and that holds no
      -- place yet: it waits its group's turn as a new one does, its record `pending`
      -- with no entry meanwhile (see `group_fill`).
      if wait_group_turn(qp, id, ids_prefix .. id, group, {'id', id, 'group', group}, now,
          group_limits(limits_cache, qp)) then
        redis.call('HSET', job, 'status', 'pending')
        status = nil
      end
    elseif (whole or status == 'scheduled' or status == 'failed')
        and group_turn_for_due(qp, group, KEYS[1], id) > 0 then
      whole, status = nil, nil
    end
    if whole then
      local entry = redis.call('XADD', KEYS[2], '*', unpack(whole))
      redis.call('SET', ids_prefix .. id, entry)
      redis.call('DEL', job)
      promoted = promoted + 1
    elseif status == 'scheduled' or status == 'failed' then
      -- A job of a group names it, so that its completion gives its place back.
      local entry = group and redis.call('XADD', KEYS[2], '*', 'id', id, 'group', group)
        or redis.call('XADD', KEYS[2], '*', 'id', id)
      redis.call('HSET', job, 'status', 'pending', 'entry', entry)
      promoted = promoted + 1
    end
  end
end

-- Groups (protocol 2.17): the due groups that have waited longest let through what their
-- windows have room for and their rates allow, once pruned of jobs that ended without
-- releasing their place (a death, a cancel, an expiry, a completion whose worker died
-- before it released). One that still waits is scored for its next look (see
-- `group_fill`), behind the others.
local due_groups = redis.call('ZRANGEBYSCORE', qp .. 'groups', '-inf', now, 'LIMIT', 0,
  GROUPS_PER_PASS)
local limits = #due_groups > 0 and group_limits(limits_cache, qp) or nil
for _, group in ipairs(due_groups) do
  -- Asking whether each job let through still lives is needed only when none has room.
  if limits[1] and redis.call('SCARD', qp .. 'group_flight:' .. group) >= limits[1] then
    group_prune(qp, group)
  end
  group_fill(qp, KEYS[2], group, GROUP_FILL_MOST, recheck, limits)
end

-- How long until the next job left in either set, or the next waiting group, is due, on
-- the server's clock, so that a promoter may wake then rather than at its next tick.
local next_due = false
for _, set in ipairs({KEYS[3], KEYS[1], qp .. 'groups'}) do
  local first = redis.call('ZRANGE', set, 0, 0, 'WITHSCORES')
  local due = first[2] and tonumber(first[2])
  if due and (not next_due or due < next_due) then next_due = due end
end
if not next_due then return {promoted, -1} end
return {promoted, math.max(0, next_due - now)}
