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

-- Record a terminal state in the recent-ids index and keep the index bounded by retention.
local function index_terminal(idx_key, job_id, now, retention)
  redis.call('ZADD', idx_key, now, job_id)
  redis.call('ZREMRANGEBYSCORE', idx_key, '-inf', now - retention)
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

-- Dependencies (protocol 2.19). A job may wait for other jobs, its parents, to end first.
-- It waits outside every stream: its id key holds `waiting`, its id is in its queue's
-- `waiting` set (scored by when it was created), and its `deps:<id>` hash says what it
-- waits for: `left` (parents not yet done), `edges` (how many it has), `blocked` (parents
-- that ended without completing under a `wait` edge), `job` (its enqueue arguments, the
-- published script's, packed), `created_at`, and per parent `o:<queue> <id>` (how it
-- ended) and `r:<queue> <id>` (its result). A parent's edges are in its queue's
-- `hook:<id>` list, one element `<policy> <child's queue> <child's id>` each, and its id in
-- the queue's `hooked` set. Every script that ends a job for good (complete, dead,
-- expired, cancelled, deleted) settles its edges in the same call (see
-- `settle_dependents`): nothing sits between a parent's end and its children's turn, so
-- nothing can be lost between them. On Redis Cluster a flow's queues share one hash slot.
-- How long a child's `deps` hash is kept once it was let go, so its handler can read its
-- parents' results (ms).
local DEPS_KEPT_MS = 604800000

-- A queue's key prefix (`<ns>:{<queue>}:`) from the namespace and its name.
local function queue_prefix(ns, queue)
  return ns .. ':{' .. queue .. '}:'
end

-- The namespace and the queue's name of a queue's key prefix.
local function queue_parts(qp)
  return string.match(qp, '^(.*):{([^{}]*)}:$')
end

-- The record a job that never ran gets as it ends waiting (cancelled because a parent
-- died, say), built from its enqueue arguments `A`.
local function waiting_record(cqp, cid, A, created, status, reason, now, retention)
  local record = cqp .. 'job:' .. cid
  redis.call('HSET', record, 'id', cid, 'type', A[2], 'queue', A[12], 'payload', A[3],
    'content_type', A[4], 'attempts', 0, 'max_attempts', A[5], 'timeout_ms', A[6],
    'backoff', A[7], 'created_at', created or now, 'v', A[14], 'status', status,
    'error', reason, 'finished_at', now)
  if retention > 0 then redis.call('PEXPIRE', record, retention) end
  index_terminal(cqp .. 'idx:' .. status, cid, now, retention)
end

-- Ends a job waiting for its parents without running it (`status`: `cancelled`), its
-- reason in its record. Returns whether it was waiting.
local function end_waiting(cqp, cid, status, reason, now, retention)
  local deps = cqp .. 'deps:' .. cid
  local f = redis.call('HMGET', deps, 'job', 'created_at')
  if not f[1] then return false end
  waiting_record(cqp, cid, cmsgpack.unpack(f[1]), f[2], status, reason, now, retention)
  -- One key per DEL: a role's rule may let it delete some of a queue's keys only.
  redis.call('DEL', deps)
  redis.call('DEL', cqp .. 'id:' .. cid)
  redis.call('ZREM', cqp .. 'waiting', cid)
  return true
end

-- Lets a job whose parents are all done go: it is enqueued as its arguments say (a delay
-- counts from now), whatever its queue's length cap, and its `deps` hash stays a while
-- for its handler to read.
local function release_waiting(cqp, cid, now)
  local deps = cqp .. 'deps:' .. cid
  local packed = redis.call('HGET', deps, 'job')
  if not packed then return end
  local A = cmsgpack.unpack(packed)
  redis.call('DEL', cqp .. 'id:' .. cid)
  redis.call('ZREM', cqp .. 'waiting', cid)
  redis.call('HDEL', deps, 'left', 'job', 'blocked')
  redis.call('HSET', deps, 'released_at', now)
  redis.call('PEXPIRE', deps, DEPS_KEPT_MS)
  A[11] = '0'
  local reply = enqueue_job(cqp .. 'q', cqp .. 'job:' .. cid, cqp .. 'delayed', nil, A, 0, {},
    nil, A[18] or '0', A[19] or '')
  -- Checked when the flow was created, so never refused; were it, it would end visibly.
  if type(reply) == 'string' then
    waiting_record(cqp, cid, A, redis.call('HGET', deps, 'created_at'), 'cancelled',
      'could not be enqueued: ' .. reply, now, DEPS_KEPT_MS)
  end
end

-- Batches (protocol 2.19). A batch is a set of jobs whose ends are counted in its hash,
-- `batch:<id>` of its queue: `total`, `pending` (not yet ended), `completed`, `dead` (dead,
-- and so still able to complete after an operator's retry), `ended` (cancelled, expired
-- or deleted: over for good), `sealed` (`1` once no job may be added), `created_at`, and
-- per dead job `m:<queue> <id>`. Its callbacks are jobs waiting as a job waits for its
-- parents (`cb:<kind>` names each, `<queue> <id>`), let go or cancelled once each:
-- `done:<kind>` says which happened. A member's edge to its batch is
-- `batch <batch's queue> <batch id>` in its `hook:<id>` list.
-- Lets the batch's callback of `kind` go (`fire`) or cancels it with `reason`, once.
local function batch_callback(key, kind, fire, reason, now, retention)
  local at = redis.call('HGET', key, 'cb:' .. kind)
  if not at then return end
  if redis.call('HSETNX', key, 'done:' .. kind, fire and 'fired' or 'dropped') == 0 then return end
  local cq, cid = string.match(at, '^(%S+) (%S+)$')
  local ns = queue_parts(string.match(key, '^(.*:{[^{}]*}:)batch:'))
  local cqp = queue_prefix(ns, cq)
  if fire then
    release_waiting(cqp, cid, now)
  else
    end_waiting(cqp, cid, 'cancelled', reason, now, retention)
  end
end

-- Fires or cancels what the batch's counts now decide, once it is sealed: `complete` when
-- no job is pending; `success` when every job completed, cancelled once one ended for
-- good; `death` cancelled when every job ended and none died. A finished batch whose
-- callbacks are all decided is kept a week more, then forgotten.
local function batch_settled(key, now, retention)
  local f = redis.call('HMGET', key, 'sealed', 'total', 'pending', 'completed', 'dead', 'ended')
  if f[1] ~= '1' then return end
  local total, pending = tonumber(f[2]) or 0, tonumber(f[3]) or 0
  local completed, dead, ended = tonumber(f[4]) or 0, tonumber(f[5]) or 0, tonumber(f[6]) or 0
  if pending > 0 then return end
  redis.call('HSETNX', key, 'finished_at', now)
  batch_callback(key, 'complete', true, nil, now, retention)
  if dead + ended == 0 then
    batch_callback(key, 'death', false, 'no job of the batch died', now, retention)
  end
  if completed >= total then
    batch_callback(key, 'success', true, nil, now, retention)
  elseif ended > 0 then
    batch_callback(key, 'success', false, 'a job of the batch ended without completing', now,
      retention)
  end
  if dead == 0 then redis.call('PEXPIRE', key, DEPS_KEPT_MS) end
end

-- Whether `text` is a name: 1-256 printable bytes without spaces, braces or controls.
local function is_name(text)
  return type(text) == 'string' and #text >= 1 and #text <= 256 and
    not string.find(text, '[%s{}%c]')
end

-- Why a job of a flow or a batch (its arguments `A`, the published enqueue script's) is
-- refused, as the whole error's text (`BAD_FLOW …`, `BAD_BATCH …`, `BAD_ARG …`, `BAD_ID …`,
-- naming the job; `code` is the flow's or batch's own word), or nil.
local function member_refusal(A, code)
  if not is_name(A[12]) or not is_name(A[1]) or not is_name(A[2]) then
    return code .. ' job ' .. tostring(A[1]) .. ': bad queue name, id or type'
  end
  local refusal = enqueue_refusal(A, 0, A[18] or '0', A[19] or '')
  if refusal then
    local word, rest = string.match(refusal, '^(%S+) (.*)$')
    return word .. ' job ' .. A[1] .. ': ' .. rest
  end
  if A[10] ~= '0' or A[16] ~= '0' or A[17] ~= '0' then
    return code .. ' job ' .. A[1] .. ': holds a unique or debounce key, which a job of a ' ..
      'flow or batch may not'
  end
  return nil
end

-- batch: open a batch, add jobs to an open one, or seal it (protocol 2.19). A batch counts
-- its jobs' ends (see "Batches" in common.lua) and lets its callbacks go once each, when
-- what they wait for holds: `complete` once every job ended, `success` once every job
-- completed, `death` at the first job that ends without completing. Each call is checked
-- whole before anything is written: a refusal writes nothing.
-- KEYS[1] the stream of the batch's queue (where a cluster client sends the call)
-- ARGV[1] the namespace   ARGV[2] the batch's queue   ARGV[3] the batch's id
-- ARGV[4] `open` (create it, with its callbacks and first jobs), `add` (add jobs to it
--         while it is open) or `seal` (no job may be added from now on)
-- ARGV[5] `seal` to seal it in the same call, else empty
-- ARGV[6] how many callbacks (for `open`; 0 otherwise), then per callback its kind
--         (`success`, `complete` or `death`) and the published `enqueue` script's arguments
--         1 to 19 (no unique or debounce key; the length cap is ignored)
-- then how many jobs (at most 20 000 a call), then per job the `enqueue` script's
-- arguments 1 to 19, as for a callback
-- Returns {total, pending, completed, dead, ended, sealed (0 or 1)}.
-- Errors (nothing written): BAD_BATCH (its reason: the batch exists already or is not
-- known, it is sealed, a bad kind or name, an id twice or taken, too many jobs), and
-- BAD_ARG or BAD_ID as `enqueue` answers them, naming the job.
local MAX_BATCH_CALL_JOBS = 20000
local ARGS_PER_JOB = 19
local KINDS = {success = true, complete = true, death = true}

local ns, queue, id, mode, seal = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5] == 'seal'
local function refuse(text)
  return redis.error_reply('BAD_BATCH ' .. text)
end
if not is_name(queue) or not is_name(id) then return refuse('bad queue name or batch id') end
local bqp = queue_prefix(ns, queue)
local key = bqp .. 'batch:' .. id
local exists = redis.call('EXISTS', key) == 1
if mode == 'open' then
  if exists then return refuse('batch ' .. id .. ' exists already in queue ' .. queue) end
elseif mode == 'add' or mode == 'seal' then
  if not exists then return refuse('no batch ' .. id .. ' in queue ' .. queue) end
  if redis.call('HGET', key, 'sealed') == '1' then
    if mode == 'seal' then
      local f = redis.call('HMGET', key, 'total', 'pending', 'completed', 'dead', 'ended')
      return {f[1] or '0', f[2] or '0', f[3] or '0', f[4] or '0', f[5] or '0', '1'}
    end
    return refuse('batch ' .. id .. ' is sealed: no job may be added')
  end
else
  return refuse('mode ' .. tostring(mode) .. ' is none of open, add, seal')
end

-- Reads `count` jobs' arguments from ARGV at `at`, each after its kind when `kinded`.
local at = 7
local seen = {}
local function read_jobs(count, kinded)
  local jobs = {}
  for _ = 1, count do
    local kind
    if kinded then
      kind = ARGV[at]
      at = at + 1
      if not KINDS[kind] then
        return nil, 'callback kind ' .. tostring(kind) .. ' is none of success, complete, death'
      end
    end
    local A = {}
    for i = 1, ARGS_PER_JOB do A[i] = ARGV[at + i - 1] end
    at = at + ARGS_PER_JOB
    if A[ARGS_PER_JOB] == nil then return nil, 'a job is cut short' end
    local refusal = member_refusal(A, 'BAD_BATCH')
    if refusal then return nil, refusal, refusal end
    if seen[A[1]] then return nil, 'job id ' .. A[1] .. ' is in the call twice' end
    seen[A[1]] = true
    local qp = queue_prefix(ns, A[12])
    if redis.call('EXISTS', qp .. 'job:' .. A[1], qp .. 'id:' .. A[1]) > 0 or
        redis.call('ZSCORE', qp .. 'done_ids', A[1]) then
      return nil, 'job id ' .. A[1] .. ' is taken in queue ' .. A[12]
    end
    A[11] = '0'
    jobs[#jobs + 1] = {A = A, qp = qp, kind = kind}
  end
  return jobs
end

local callbacks_count = tonumber(ARGV[6]) or -1
if callbacks_count < 0 or callbacks_count > 3 or (mode ~= 'open' and callbacks_count > 0) then
  return refuse('callbacks are given when the batch is opened, at most one of each kind')
end
local callbacks, why, full = read_jobs(callbacks_count, true)
if not callbacks then return full and redis.error_reply(full) or refuse(why) end
local kinds = {}
for _, cb in ipairs(callbacks) do
  if kinds[cb.kind] then return refuse('callback ' .. cb.kind .. ' is given twice') end
  kinds[cb.kind] = true
end
local count = tonumber(ARGV[at])
at = at + 1
if not count or count < 0 or count > MAX_BATCH_CALL_JOBS or count % 1 ~= 0 then
  return refuse('a call adds 0 to ' .. MAX_BATCH_CALL_JOBS .. ' jobs, not ' .. tostring(ARGV[at - 1]))
end
if mode == 'seal' and count > 0 then return refuse('a seal adds no job') end
local jobs
jobs, why, full = read_jobs(count, false)
if not jobs then return full and redis.error_reply(full) or refuse(why) end
if at ~= #ARGV + 1 then return refuse('the arguments do not match the counts given') end

local now = now_ms()
if mode == 'open' then
  redis.call('HSET', key, 'total', 0, 'pending', 0, 'completed', 0, 'dead', 0, 'ended', 0,
    'sealed', 0, 'created_at', now)
  for _, cb in ipairs(callbacks) do
    local A = cb.A
    local deps = cb.qp .. 'deps:' .. A[1]
    redis.call('HSET', deps, 'left', 1, 'edges', 1, 'blocked', 0, 'job', cmsgpack.pack(A),
      'type', A[2], 'created_at', now, 'batch', queue .. ' ' .. id)
    redis.call('SET', cb.qp .. 'id:' .. A[1], 'waiting')
    redis.call('ZADD', cb.qp .. 'waiting', now, A[1])
    redis.call('HSET', key, 'cb:' .. cb.kind, A[12] .. ' ' .. A[1])
  end
end
local edge = 'batch ' .. queue .. ' ' .. id
local batches = {}
for _, job in ipairs(jobs) do
  local A = job.A
  local batch = batches[job.qp]
  if not batch then
    batch = {}
    batches[job.qp] = batch
  end
  local reply = enqueue_job(job.qp .. 'q', job.qp .. 'job:' .. A[1], job.qp .. 'delayed', nil,
    A, 0, batch, nil, A[18] or '0', A[19] or '')
  if type(reply) == 'string' then return redis.error_reply(reply) end
  redis.call('RPUSH', job.qp .. 'hook:' .. A[1], edge)
  redis.call('SADD', job.qp .. 'hooked', A[1])
end
if count > 0 then
  redis.call('HINCRBY', key, 'total', count)
  redis.call('HINCRBY', key, 'pending', count)
end
if seal or mode == 'seal' then
  redis.call('HSET', key, 'sealed', 1)
  batch_settled(key, now, 86400000)
end
local f = redis.call('HMGET', key, 'total', 'pending', 'completed', 'dead', 'ended', 'sealed')
return {f[1] or '0', f[2] or '0', f[3] or '0', f[4] or '0', f[5] or '0', f[6] or '0'}
