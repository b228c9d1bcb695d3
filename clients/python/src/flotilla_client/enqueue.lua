-- The latest run time (3000-01-01T00:00:00Z) and the longest duration (ten years) a job
-- may name, in ms. Below them every number here stays an exact integer that Lua prints as
-- digits, so the times the scripts store are whole numbers every reader parses.
local MAX_RUN_AT_MS = 32503680000000

local MAX_DURATION_MS = 315360000000

-- Whether `text` is a whole number from 0 to `max`.
local function whole_within(text, max)
  local n = tonumber(text)
  return n ~= nil and n >= 0 and n <= max and n % 1 == 0
end

-- Redis server time in milliseconds, so every process agrees on "now".
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Redis server time in microseconds (what a rate's spacing counts in).
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Whether `id` has the form of a stream entry id (<digits>-<digits>). Such an id names a
-- job without an id of its own (its entry's); no producer may give it to a job, so the two
-- kinds of id never share a name.
local function is_entry_id(id)
  return string.match(id, '^%d+%-%d+$') ~= nil
end

-- Whether an id names a job without an id of its own: an entry id, or the full id of one
-- (`<queue>:<entry id>`). No producer may give either to a job.
local function names_entry(id)
  return is_entry_id(id) or string.match(id, ':%d+%-%d+$') ~= nil
end

-- A record key up to its job id: the queue's prefix for records.
local function job_prefix_of(job_key, job_id)
  return string.sub(job_key, 1, #job_key - #job_id)
end

-- The prefix of a queue's id keys, from its record prefix (`<ns>:{<queue>}:job:`). An id
-- key remembers a job's own id while the job lives in its stream entry rather than in a
-- record: it holds the entry id while the job waits or runs (the entry itself while it
-- waits in `later`); once the job completed, `done_ids` remembers the id instead (a key
-- written by protocol 2.7 holds `done <done entry id>` until it expires). It shares the
-- records' hash tag.
local function id_prefix_of(records)
  return string.sub(records, 1, #records - 4) .. 'id:'
end

-- The queue's `done_ids` set, from its record prefix: ids of jobs that completed without a
-- record (protocol 2.8), scored by when; each one's completion is in `done` from then on.
local function done_ids_of(records)
  return string.sub(records, 1, #records - 4) .. 'done_ids'
end

-- The id key of `job_id`, from its record key.
local function id_key_of(job_key, job_id)
  return id_prefix_of(job_prefix_of(job_key, job_id)) .. job_id
end

-- The queue's `later` set, from its `delayed` set's key: ids of jobs that wait for a time
-- without a record, scored by due time (ms). Each one's id key holds the whole job as
-- the entry it becomes once due: its state (`scheduled`, or `failed` while a retry
-- waits), a space, and the entry's field/value pairs as one MessagePack array of strings.
local function later_of(delayed_key)
  return string.sub(delayed_key, 1, #delayed_key - 7) .. 'later'
end

-- An id key's value for a job waiting in `later` in `state`, with the entry `fields`.
local function pack_waiting(state, fields)
  return state .. ' ' .. cmsgpack.pack(fields)
end

-- The state and entry fields of an id key's value written by `pack_waiting`; nil for a
-- value of another form (an entry id, `done <entry id>`) or none.
local function unpack_waiting(value)
  if type(value) ~= 'string' then return nil end
  local space = string.find(value, ' ', 1, true)
  if not space then return nil end
  local state = string.sub(value, 1, space - 1)
  if state ~= 'scheduled' and state ~= 'failed' then return nil end
  local ok, fields = pcall(cmsgpack.unpack, string.sub(value, space + 1))
  if not ok or type(fields) ~= 'table' then return nil end
  return state, fields
end

local function queue_prefix_of(records)
  return string.sub(records, 1, #records - 4)
end

-- The fields of an id key's value for a job waiting its group's turn; nil for any other.
local function unpack_grouped(value)
  if type(value) ~= 'string' or string.sub(value, 1, 8) ~= 'grouped ' then return nil end
  local ok, fields = pcall(cmsgpack.unpack, string.sub(value, 9))
  if not ok or type(fields) ~= 'table' then return nil end
  return fields
end

-- How many jobs of the queue whose stream is `stream` wait their group's turn.
local function grouped_count(stream)
  return math.max(tonumber(redis.call('GET', string.sub(stream, 1, #stream - 1) .. 'grouped'))
    or 0, 0)
end

-- How many jobs of a group may be let through at once: nil when groups are not limited.
local function group_window(qp)
  local n = tonumber(redis.call('HGET', qp .. 'group_limit', 'concurrency'))
  if n and n >= 1 then return n end
  return nil
end

-- The rate each group's jobs are let through at, {spacing µs, burst}: nil for none.
local function group_rate(qp)
  local r = redis.call('HMGET', qp .. 'group_limit', 'rate_spacing_us', 'rate_burst')
  local spacing, burst = tonumber(r[1]), tonumber(r[2])
  if spacing and spacing >= 1 and burst and burst >= 1 then return {spacing, burst} end
  return nil
end

-- The group limits of the queue whose prefix is `qp`, {window, rate}, read once per
-- `cache` (a table a script keeps for its call).
local function group_limits(cache, qp)
  local limits = cache[qp]
  if not limits then
    limits = {group_window(qp), group_rate(qp)}
    cache[qp] = limits
  end
  return limits
end

-- Takes one turn of `group`'s rate at `now` (µs): 0 when taken, else the ms until the
-- next turn is due (none is taken).
local function group_turn(qp, group, rate, now)
  local key = qp .. 'group_rate:' .. group
  local spacing, burst = rate[1], rate[2]
  local tat = math.max(tonumber(redis.call('GET', key)) or 0, now)
  local ahead = tat - (burst - 1) * spacing - now
  if ahead > 0 then return math.max(math.ceil(ahead / 1000), 1) end
  tat = tat + spacing
  redis.call('SET', key, string.format('%.0f', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
  return 0
end

-- Whether job `id` has not ended for good: its id key holds it while it waits, or names
-- an entry still on the stream, or its record says a status that is not final. (An id
-- key naming an entry that is gone, deleted by hand or trimmed, holds no place.)
local function job_lives(qp, id)
  local held = redis.call('GET', qp .. 'id:' .. id)
  if held then
    if not is_entry_id(held) then return string.sub(held, 1, 5) ~= 'done ' end
    if #redis.call('XRANGE', qp .. 'q', held, held) > 0 then return true end
  elseif is_entry_id(id) and #redis.call('XRANGE', qp .. 'q', id, id) > 0 then
    -- Named by its entry, from a raw XADD, with no id key: it lives while its entry does.
    return true
  end
  local status = redis.call('HGET', qp .. 'job:' .. id, 'status')
  return status ~= false and status ~= nil and status ~= 'completed' and status ~= 'dead'
    and status ~= 'cancelled' and status ~= 'expired'
end

-- Drops from a group's flight the jobs that ended (a completion, a death or a cancel
-- that did not say so itself); returns how many are still let through.
local function group_prune(qp, group)
  local flight = qp .. 'group_flight:' .. group
  for _, id in ipairs(redis.call('SMEMBERS', flight)) do
    if not job_lives(qp, id) then redis.call('SREM', flight, id) end
  end
  return redis.call('SCARD', flight)
end

-- How long a group that waits for room in its window stays out of promote passes (its
-- completions let it through at once; a pass is the backstop), unless a caller says.
local GROUP_RECHECK_MS = 250

-- Lets a group's waiting jobs through to `stream`, oldest first, while its window has
-- room and its rate a turn (all of them, up to `most`, once groups are no longer
-- limited); returns how many. A group still waiting is scored in `groups` for when a
-- promote pass should look again: its rate's next turn, else `recheck` ms from now.
-- `limits` ({window, rate}, as `group_window` and `group_rate` read them) saves a caller
-- that fills many groups reading them for each; nil reads them.
local function group_fill(qp, stream, group, most, recheck, limits)
  local list, flight = qp .. 'group:' .. group, qp .. 'group_flight:' .. group
  local window, rate
  if limits then
    window, rate = limits[1], limits[2]
  else
    window, rate = group_window(qp), group_rate(qp)
  end
  local now = rate and now_us()
  local moved, wait, popped = 0, 0, 0
  while moved < most do
    if window and redis.call('SCARD', flight) >= window then break end
    local id = redis.call('LPOP', list)
    if not id then break end
    popped = popped + 1
    local id_key = qp .. 'id:' .. id
    local fields = unpack_grouped(redis.call('GET', id_key))
    -- A job cancelled or deleted while it waited left its id behind: skip it.
    if fields then
      if rate then wait = group_turn(qp, group, rate, now) end
      if wait > 0 then
        redis.call('LPUSH', list, id)
        popped = popped - 1
        break
      end
      local record = qp .. 'job:' .. id
      if redis.call('EXISTS', record) == 1 then
        -- A job with a record (a unique one): its entry names it, and its group, so that
        -- its completion gives its place back.
        redis.call('HSET', record, 'entry',
          redis.call('XADD', stream, '*', 'id', id, 'group', group))
        redis.call('DEL', id_key)
      else
        fields[#fields + 1] = 'held'
        fields[#fields + 1] = '1'
        redis.call('SET', id_key, redis.call('XADD', stream, '*', unpack(fields)))
      end
      if window then redis.call('SADD', flight, id) end
      moved = moved + 1
    end
  end
  if popped > 0 then redis.call('INCRBY', qp .. 'grouped', -popped) end
  if redis.call('LLEN', list) == 0 then
    redis.call('ZREM', qp .. 'groups', group)
  else
    local at = (now and math.floor(now / 1000) or now_ms()) +
      (wait > 0 and wait or (recheck or GROUP_RECHECK_MS))
    redis.call('ZADD', qp .. 'groups', 'XX', at, group)
  end
  return moved
end

-- How long a debounce key outlives the due time of the job it names: long enough that a
-- promoter running late still finds it, short enough that keys do not pile up.
local DEBOUNCE_KEY_SLACK_MS = 60000

-- The published enqueue script's bounded arguments (by position), checked for every job.
local ENQUEUE_BOUNDS = {{6, MAX_DURATION_MS, 'timeout'}, {8, MAX_RUN_AT_MS, 'run at'},
  {9, MAX_DURATION_MS, 'delay'}, {10, MAX_DURATION_MS, 'unique hold'}}

-- The options a whole entry carries when set (field, argument position); a count or
-- timeout of 0 means the worker's default, as in a record.
local ENTRY_OPTIONS = {{'content_type', 4}, {'max_attempts', 5}, {'timeout', 6},
  {'backoff', 7}, {'trace', 13}}

-- Why the published script refuses the job whose arguments are at `A[o + 1]` to
-- `A[o + 15]`, expiring at `expires` (ms, '0' for never), of `group` ('' for none), or
-- nil: the text of its BAD_ARG or BAD_ID error.
local function enqueue_refusal(A, o, expires, group)
  if expires ~= '0' and not whole_within(expires, MAX_RUN_AT_MS) then
    return 'BAD_ARG expires at ' .. tostring(expires) ..
      ': expected whole milliseconds since the Unix epoch, at most ' .. MAX_RUN_AT_MS
  end
  if group ~= '' and (#group > 256 or string.find(group, '[%s{}%c]')) then
    return 'BAD_ARG group ' .. group .. ': expected a name: 1-256 printable characters ' ..
      'without spaces, braces or control characters'
  end
  for _, bound in ipairs(ENQUEUE_BOUNDS) do
    local value = A[o + bound[1]]
    -- '0' (not set), the usual value, is within every bound: no number to read.
    if value ~= '0' and not whole_within(value, bound[2]) then
      return 'BAD_ARG ' .. bound[3] .. ' ' .. tostring(value) ..
        ': expected whole milliseconds from 0 to ' .. bound[2]
    end
  end
  local id = A[o + 1]
  if names_entry(id) then
    return 'BAD_ID id ' .. id .. ' has the form of a stream entry id ' ..
      '(<digits>-<digits>) or of the full id of one (<queue>:<digits>-<digits>), which name ' ..
      'jobs without an id of their own: give the job an id of another form, a UUID say'
  end
  return nil
end

-- The fields of the entry that carries the whole of a job without a record (arguments at
-- `A[o + 1]` on, expiring at `expires`, of `group`): its id, type and payload, then each
-- option that is set.
local function entry_fields_of(A, o, expires, group)
  local fields = {'id', A[o + 1], 'type', A[o + 2], 'payload', A[o + 3]}
  if group and group ~= '' then
    fields[#fields + 1] = 'group'
    fields[#fields + 1] = group
  end
  for _, option in ipairs(ENTRY_OPTIONS) do
    local value = A[o + option[2]]
    if value ~= '' and value ~= '0' then
      fields[#fields + 1] = option[1]
      fields[#fields + 1] = value
    end
  end
  if expires ~= '0' then
    fields[#fields + 1] = 'expires_at'
    fields[#fields + 1] = expires
  end
  return fields
end

-- Debounce (protocol 2.14): folds a new job into the job `holder` its debounce key names,
-- when that job still waits for its first run (in `later`, never started): the new job's
-- fields replace the waiting one's under the waiting one's id, and it becomes due
-- `debounce.delay` from now, but no later than `debounce.max` after the waiting job was
-- first enqueued (0: no bound). Returns whether it did.
local function debounce_into(holder, record, later, debounce, A, o, now, expires, group)
  if not redis.call('ZSCORE', later, holder) then return false end
  local held_key = id_prefix_of(job_prefix_of(record, A[o + 1])) .. holder
  local state, fields = unpack_waiting(redis.call('GET', held_key))
  if state ~= 'scheduled' then return false end
  local created = nil
  for i = 1, #fields, 2 do
    -- A job that ran before (a snoozed one) is not folded into: it has begun.
    if fields[i] == 'attempts' then return false end
    if fields[i] == 'created_at' then created = tonumber(fields[i + 1]) end
  end
  created = created or now
  local due = now + debounce.delay
  if debounce.max > 0 then due = math.min(due, created + debounce.max) end
  local merged = entry_fields_of(A, o, expires, group)
  merged[2] = holder
  merged[#merged + 1] = 'run_at'
  merged[#merged + 1] = tostring(due)
  merged[#merged + 1] = 'created_at'
  merged[#merged + 1] = tostring(created)
  redis.call('SET', held_key, pack_waiting('scheduled', merged))
  redis.call('ZADD', later, due, holder)
  redis.call('SET', debounce.key, holder, 'PX', math.max(due - now, 0) + DEBOUNCE_KEY_SLACK_MS)
  return true
end

-- Adds `created_at` (`at`, ms) to entry `fields` unless they carry one already.
local function with_created_at(fields, at)
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'created_at' then return end
  end
  fields[#fields + 1] = 'created_at'
  fields[#fields + 1] = tostring(at)
end

-- Puts a job of `group` that is to run now for the first time (a new one, or one whose
-- time came) in its group's line when the group has as many jobs let through as the
-- queue allows, or no turn of its rate left, or already has jobs waiting (they go
-- first); else counts it as let through. `qp` is its queue's prefix (`<ns>:{<queue>}:`),
-- `limits` its group limits (see `group_limits`). Returns whether it waits.
local function wait_group_turn(qp, id, id_key, group, fields, now, limits)
  local window, rate = limits[1], limits[2]
  if not window and not rate then return false end
  local list, flight = qp .. 'group:' .. group, qp .. 'group_flight:' .. group
  local wait = 0
  if redis.call('LLEN', list) == 0 and (not window or redis.call('SCARD', flight) < window
      or group_prune(qp, group) < window) then
    if rate then wait = group_turn(qp, group, rate, now_us()) end
    if wait == 0 then
      if window then redis.call('SADD', flight, id) end
      return false
    end
  end
  -- When it was enqueued travels with it, as a job waiting in `later`'s does (one that
  -- waited there has it already).
  with_created_at(fields, now)
  redis.call('SET', id_key, 'grouped ' .. cmsgpack.pack(fields))
  redis.call('RPUSH', list, id)
  redis.call('INCRBY', qp .. 'grouped', 1)
  redis.call('ZADD', qp .. 'groups', 'NX', now + wait, group)
  return true
end

-- Creates one job (the published `enqueue` script, and `enqueue_many` for a batch of one
-- queue's jobs): `stream`, `record` and `delayed` are its queue's stream, its record key
-- and its queue's delayed set; `unique` the unique key it holds, or nil. Its arguments are
-- the published script's, in its order, at `A[o + 1]` to `A[o + 15]`. `batch` carries what
-- the jobs of one call share and need read only once (the time, the queue's depth): an
-- empty table at first. `debounce` ({key, delay, max}, or nil) folds it into the waiting
-- job its key names (see `debounce_into`). `expires` is when the job may no longer start
-- (ms since the epoch; '0': never); `group` its group ('': none), whose turn it waits for
-- when the group has as many jobs let through as the queue allows (see `group_fill`), at
-- once or, with a time, when its time comes.
-- Returns {job id, outcome}, or the text of the error (QUEUE_FULL, BAD_ID, BAD_ARG) the
-- published script answers.
local function enqueue_job(stream, record, delayed, unique, A, o, batch, debounce, expires,
    group)
  local id = A[o + 1]
  local refusal = enqueue_refusal(A, o, expires, group)
  if refusal then return refusal end
  if debounce then
    if not batch.now then batch.now = now_ms() end
    local holder = redis.call('GET', debounce.key)
    if holder and debounce_into(holder, record, later_of(delayed), debounce, A, o, batch.now,
        expires, group) then
      return {holder, 'debounced'}
    end
  end
  if unique then
    local holder = redis.call('GET', unique)
    if holder then return {holder, 'duplicate'} end
  end
  local id_key = id_key_of(record, id)
  if redis.call('EXISTS', record, id_key) > 0 then return {id, 'exists'} end
  -- Completed without a record: remembered as long as its completion.
  if redis.call('ZSCORE', done_ids_of(job_prefix_of(record, id)), id) then
    return {id, 'exists'}
  end

  local later = batch.later
  if not later then
    later = later_of(delayed)
    batch.later = later
  end
  local cap = tonumber(A[o + 11])
  if cap > 0 then
    if not batch.depth then
      batch.depth = redis.call('XLEN', stream) + redis.call('ZCARD', delayed) +
        redis.call('ZCARD', later) + grouped_count(stream)
    end
    if batch.depth >= cap then
      return 'QUEUE_FULL queue ' .. A[o + 12] .. ' holds ' .. batch.depth ..
        ' jobs, its limit is ' .. cap
    end
  end

  local now = batch.now
  if not now then
    now = now_ms()
    batch.now = now
  end
  local due = tonumber(A[o + 8])
  local delay = tonumber(A[o + 9])
  if due == 0 and delay > 0 then due = now + delay end
  -- A debounced job waits its debounce delay, whatever else it asked.
  if debounce then due = now + debounce.delay end
  if batch.depth then batch.depth = batch.depth + 1 end

  if not unique then
    -- The whole job in its entry: a worker runs it as it runs a job without an id.
    local fields = entry_fields_of(A, o, expires, group)
    -- A job of a group with a time takes its group's turn when its time comes (promote).
    local qp = group ~= '' and due <= now and queue_prefix_of(job_prefix_of(record, id))
    if qp then batch.group_limits = batch.group_limits or {} end
    if qp and wait_group_turn(qp, id, id_key, group, fields, now,
        group_limits(batch.group_limits, qp)) then
      return {id, 'created'}
    end
    if due > now then
      -- Waits in `later`, its id key holding the entry it becomes once due. Jobs of one
      -- call share their time and, mostly, their due time: each is printed once.
      if batch.due ~= due then
        batch.due, batch.due_text = due, tostring(due)
      end
      if not batch.now_text then batch.now_text = tostring(now) end
      fields[#fields + 1] = 'run_at'
      fields[#fields + 1] = batch.due_text
      fields[#fields + 1] = 'created_at'
      fields[#fields + 1] = batch.now_text
      redis.call('ZADD', later, batch.due_text, id)
      redis.call('SET', id_key, pack_waiting('scheduled', fields))
      if debounce then
        redis.call('SET', debounce.key, id, 'PX', debounce.delay + DEBOUNCE_KEY_SLACK_MS)
      end
      return {id, 'created'}
    end
    -- `held`: the id key names this entry from the start, so a worker need not claim it.
    fields[#fields + 1] = 'held'
    fields[#fields + 1] = '1'
    local entry = redis.call('XADD', stream, '*', unpack(fields))
    -- Remembered while the job lives; its completion moves the id to `done_ids`.
    redis.call('SET', id_key, entry)
    return {id, 'created'}
  end

  redis.call('HSET', record, 'id', id, 'type', A[o + 2], 'queue', A[o + 12],
    'payload', A[o + 3], 'content_type', A[o + 4], 'attempts', 0, 'max_attempts', A[o + 5],
    'timeout_ms', A[o + 6], 'backoff', A[o + 7], 'created_at', now, 'v', A[o + 14])
  if A[o + 13] ~= '' then redis.call('HSET', record, 'trace', A[o + 13]) end
  if expires ~= '0' then redis.call('HSET', record, 'expires_at', expires) end
  if unique then
    redis.call('SET', unique, id, 'PX', A[o + 10])
    if A[o + 15] ~= 'expiry' then redis.call('HSET', record, 'unique_key', unique) end
  end

  -- A unique job of a group: its record names its group. One with a time takes its
  -- group's turn when its time comes (promote).
  if group ~= '' then redis.call('HSET', record, 'group', group) end
  if due > now then
    redis.call('ZADD', delayed, due, id)
    redis.call('HSET', record, 'status', 'scheduled', 'run_at', due)
    return {id, 'created'}
  end
  if group ~= '' then
    -- Its record waits `pending`, with no entry, while its id waits in its group's line
    -- (see `group_fill`).
    local qp = queue_prefix_of(job_prefix_of(record, id))
    batch.group_limits = batch.group_limits or {}
    if wait_group_turn(qp, id, id_key, group, {'id', id, 'group', group}, now,
        group_limits(batch.group_limits, qp)) then
      redis.call('HSET', record, 'status', 'pending', 'run_at', now)
      return {id, 'created'}
    end
  end
  local fields = {'id', id}
  if group ~= '' then fields = {'id', id, 'group', group} end
  local entry = redis.call('XADD', stream, '*', unpack(fields))
  redis.call('HSET', record, 'status', 'pending', 'run_at', now, 'entry', entry)
  return {id, 'created'}
end

-- enqueue: put a job with an id of its own on its stream now, or aside until its time.
-- A job that holds no unique key has no record: to run now it is one stream entry
-- carrying the whole job, and its id key remembers the id (the entry's id until it
-- completes); to run later its id waits in `later` and its id key holds the entry it
-- becomes. A job with a unique key gets a record (in `delayed` while it waits).
-- KEYS[1] stream   KEYS[2] job record   KEYS[3] delayed set   KEYS[4] unique key (optional)
-- ARGV[1] job id   ARGV[2] type   ARGV[3] payload   ARGV[4] content type
-- ARGV[5] max attempts   ARGV[6] timeout ms   ARGV[7] backoff   ARGV[8] run at (ms, 0 = not set)
-- ARGV[9] delay ms (0 = none)   ARGV[10] unique ttl ms   ARGV[11] queue length cap (0 = none)
-- ARGV[12] queue name   ARGV[13] trace context   ARGV[14] protocol version
-- ARGV[15] "expiry" to hold the unique key until its TTL runs out, else it is released
--          when the job completes or is cancelled
-- ARGV[16] debounce delay ms (absent or 0: not debounced; protocol 2.14), and then KEYS[4]
--          is the debounce key (`<ns>:{<queue>}:debounce:<key>`) rather than a unique key
-- ARGV[17] debounce max ms (absent or 0: no bound)
--          A debounced job whose key names a job still waiting for its first run is
--          folded into it: the waiting job takes the new job's fields (the last enqueue's
--          payload wins), keeps its id and first enqueue, and becomes due the debounce
--          delay from now, but no later than the debounce max after its first enqueue.
--          Otherwise the new job waits its debounce delay and the key names it.
-- ARGV[18] when the job may no longer start, ms since the Unix epoch (absent or 0: never;
--          protocol 2.16): a job not started by then ends as `expired` without running
-- ARGV[19] the job's group (absent or empty: none; protocol 2.17): where the queue limits
--          how many jobs of each group run at once, a job whose group has that many let
--          through waits its turn in the group's line (see `group_fill`); with a time
--          it takes its turn when its time comes (promote); with a unique key its record
--          waits `pending`, with no entry, while it waits its turn
-- Returns {job id, "created" | "duplicate" (unique key held) | "exists" (id already known)
-- | "debounced" (folded into the waiting job whose id is returned)}.
-- Errors with QUEUE_FULL when the queue holds as many jobs as its cap (backpressure),
-- with BAD_ID when the id has the form of a stream entry id (<digits>-<digits>), which
-- names the jobs that have no id of their own, and with BAD_ARG when a time or duration is
-- out of bounds (every client checks before it calls; here again, so that no number the
-- scripts cannot hold is ever stored).
local unique, debounce = KEYS[4], nil
local debounce_delay, debounce_max = ARGV[16] or '0', ARGV[17] or '0'
if debounce_delay ~= '0' then
  for _, arg in ipairs({{debounce_delay, 'debounce delay'}, {debounce_max, 'debounce max'}}) do
    if not whole_within(arg[1], MAX_DURATION_MS) then
      return redis.error_reply('BAD_ARG ' .. arg[2] .. ' ' .. arg[1] ..
        ': expected whole milliseconds from 0 to ' .. MAX_DURATION_MS)
    end
  end
  if ARGV[10] ~= '0' or not KEYS[4] then
    return redis.error_reply('BAD_ARG a debounced job names its debounce key as KEYS[4] ' ..
      'and holds no unique key')
  end
  unique = nil
  debounce = {key = KEYS[4], delay = tonumber(debounce_delay), max = tonumber(debounce_max)}
end
local reply = enqueue_job(KEYS[1], KEYS[2], KEYS[3], unique, ARGV, 0, {}, debounce,
  ARGV[18] or '0', ARGV[19] or '')
if type(reply) == 'string' then return redis.error_reply(reply) end
return reply
