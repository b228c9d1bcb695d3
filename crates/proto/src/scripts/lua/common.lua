-- Shared helpers, prepended to every Flotilla script (not a script of its own).

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

-- Acknowledge and remove a stream entry (rule 1: only together with a state change).
local function ack_and_delete(stream, group, entry)
  if entry and entry ~= '' then
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
  end
end

-- Whether a record's status is final: nothing more happens to the job.
local function is_final(status)
  return status == 'completed' or status == 'dead' or status == 'cancelled' or
    status == 'expired'
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

-- A stream id as two numbers, for ordering.
local function id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms) or 0, tonumber(seq) or 0
end

-- The lowest and highest of `entries` (ids of one stream), compared as numbers.
local function entry_bounds(entries)
  local low, high = entries[1], entries[1]
  local lms, lseq = id_parts(low)
  local hms, hseq = lms, lseq
  for _, e in ipairs(entries) do
    local ms, seq = id_parts(e)
    if ms < lms or (ms == lms and seq < lseq) then low, lms, lseq = e, ms, seq end
    if ms > hms or (ms == hms and seq > hseq) then high, hms, hseq = e, ms, seq end
  end
  return low, high
end

-- The entries from `low` to `high` pending under `consumer`, as a map from id to delivery
-- count (and a second from id to idle time in ms), read with one XPENDING over the range rather than one call per entry. Only this
-- consumer's entries come back: at most `count` asked about plus the others it has in
-- flight. A missing group (Redis restarted empty) means nothing is owned. Callers that
-- know the bounds pass them, as parsing every id here costs more than the read.
local function owned_in(stream, group, consumer, low, high, count)
  local owned, idle = {}, {}
  if not low or low == '' then return owned, idle end
  local pel = redis.pcall('XPENDING', stream, group, low, high, count + 100000, consumer)
  if pel.err then return owned, idle end
  for _, p in ipairs(pel) do owned[p[1]], idle[p[1]] = p[4], p[3] end
  return owned, idle
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

-- The queue's `done_sizes` list, from its record prefix (protocol 2.11): one element per
-- `done` entry a worker wrote, oldest first, "<entry id> <completions it holds>", so that
-- trimming `done` by count knows what each entry holds without reading it.
local function done_sizes_of(records)
  return string.sub(records, 1, #records - 4) .. 'done_sizes'
end

-- The queue's `done_count` hash, from its record prefix: `kept`, the completions the
-- entries `done_sizes` names hold, and `extra`, the completions written beyond one per
-- entry (`done`'s `entries-added` plus it is every completion ever written).
local function done_count_of(records)
  return string.sub(records, 1, #records - 4) .. 'done_count'
end

-- Forgets the `done_sizes` elements of entries up to `last` (a `done` entry id) after
-- those entries were deleted, taking their completions off `kept`.
local function forget_done_sizes(records, last)
  local sizes = done_sizes_of(records)
  local lms, lseq = id_parts(last)
  local dropped = 0
  while true do
    local head = redis.call('LINDEX', sizes, 0)
    if not head then break end
    local id, n = string.match(head, '^(%S+) (%d+)$')
    local ms, seq = id_parts(id or '')
    if ms > lms or (ms == lms and seq > lseq) then break end
    redis.call('LPOP', sizes)
    dropped = dropped + (tonumber(n) or 0)
  end
  if dropped > 0 then redis.call('HINCRBY', done_count_of(records), 'kept', -dropped) end
end

-- The id key of `job_id`, from its record key.
local function id_key_of(job_key, job_id)
  return id_prefix_of(job_prefix_of(job_key, job_id)) .. job_id
end

-- A record now remembers `job_id` (its job failed, was handed back, reported progress,
-- was cancelled or dead-lettered): the id key, which has no expiry while the job lives,
-- goes, and the id lives as long as the record.
local function forget_id_key(job_key, job_id)
  redis.call('DEL', id_key_of(job_key, job_id))
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

-- Groups (protocol 2.17). A queue whose `group_limit` hash names a `concurrency` lets at
-- most that many jobs of each group (a job's `group` field: a tenant, an account) through
-- to its stream at once: the others wait their turn, each group in a list of its own, so
-- a group with a long backlog never holds back another's jobs by more than its own few,
-- and groups take turns. A job let through stays in its group's `flight` set until it
-- ends for good (completed, dead, cancelled, expired, deleted); a retry or a hand-back
-- keeps its place. The keys, from the queue's record prefix (`<ns>:{<queue>}:job:`):
-- `group_limit` (hash), `group:<g>` (list of waiting ids), `group_flight:<g>` (set of ids
-- let through), `groups` (sorted set of groups with waiting jobs, by when a promote pass
-- should look at them next), `grouped` (how many ids the lines hold, for the queue's
-- depth: every push to a line adds to it and every pop or removal takes from it). A waiting grouped job's id key holds `grouped ` and its
-- packed entry.
-- A queue whose `group_limit` also names a `rate_spacing_us` and a `rate_burst` (protocol
-- 2.18) lets each group's jobs through no faster than that rate: a GCRA per group, its
-- state (the "theoretical arrival time", µs) in `group_rate:<g>`, expiring once spent. A
-- group out of turns waits in `groups` scored by when its next one is due, and promote
-- passes wake then.
-- How many waiting groups a promote pass looks at, and how many jobs of one group a call
-- lets through at most (a group no longer limited empties its line a batch at a time).
local GROUPS_PER_PASS = 64
local GROUP_FILL_MOST = 1000

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

-- Takes a job that waits its group's turn out of its group's line (a cancel, a delete);
-- returns its entry fields, or nil when the id key holds no such job.
local function leave_group_line(job_key, job_id)
  local fields = unpack_grouped(redis.call('GET', id_key_of(job_key, job_id)))
  if not fields then return nil end
  local qp = queue_prefix_of(job_prefix_of(job_key, job_id))
  for i = 1, #fields - 1, 2 do
    if fields[i] == 'group' then
      local line = qp .. 'group:' .. fields[i + 1]
      local removed = redis.call('LREM', line, 1, job_id)
      if removed > 0 then redis.call('INCRBY', qp .. 'grouped', -removed) end
      if redis.call('LLEN', line) == 0 then redis.call('ZREM', qp .. 'groups', fields[i + 1]) end
    end
  end
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

-- For a job of `group` coming due in `set` (a retry, a snooze): 0 when it may go on now
-- (its group has no rate, or a turn was taken), else puts it back in `set` for when its
-- group's next turn is due and returns the ms until then. A retry uses a turn as a first
-- run does, so a group rate holds whatever a group's handlers call.
local function group_turn_for_due(qp, group, set, id)
  if not group or group == '' then return 0 end
  local rate = group_rate(qp)
  if not rate then return 0 end
  local now = now_us()
  local wait = group_turn(qp, group, rate, now)
  if wait > 0 then redis.call('ZADD', set, math.floor(now / 1000) + wait, id) end
  return wait
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

-- How many items one command of a spread call takes: Lua's `unpack` returns at most about
-- 8000 values. Even, so that pairs stay together.
local SPREAD_ITEMS = 6000

-- `command` on `key` (nil: none, the items are keys) with `items` as its further
-- arguments, in as many calls as `unpack` needs: the replies of a reading command (one per
-- item, nil as false) joined in order, and the sum of a counting one's.
local function call_spread(command, key, items)
  local joined, sum = {}, 0
  for from = 1, #items, SPREAD_ITEMS do
    local last = math.min(#items, from + SPREAD_ITEMS - 1)
    local reply
    if key then
      reply = redis.call(command, key, unpack(items, from, last))
    else
      reply = redis.call(command, unpack(items, from, last))
    end
    if type(reply) == 'table' then
      for i = 1, #reply do joined[#joined + 1] = reply[i] end
    elseif type(reply) == 'number' then
      sum = sum + reply
    end
  end
  return joined, sum
end

-- Resets the idle time of `entries` (pending under `consumer`) with one XCLAIM that
-- counts no delivery, so that no reclaimer takes them before their worker's next
-- heartbeat (rule 4).
local function reset_idle(stream, group, consumer, entries)
  if #entries == 0 then return end
  local claim = {'XCLAIM', stream, group, consumer, 0}
  for _, e in ipairs(entries) do claim[#claim + 1] = e end
  claim[#claim + 1] = 'JUSTID'
  redis.call(unpack(claim))
end

-- The ids among `entries` (all of one stream) that are pending under `consumer`, as a
-- map from id to delivery count.
local function owned_by(stream, group, consumer, entries)
  if #entries == 0 then return {} end
  local low, high = entry_bounds(entries)
  return owned_in(stream, group, consumer, low, high, #entries)
end

-- A fast-path attempt that is no longer its worker's may have been cancelled (its
-- cancelled record says so).
local function was_cancelled(job)
  return redis.call('HGET', job, 'status') == 'cancelled'
end

-- Why a fast-path attempt is no longer current: "stale" when another worker took its
-- entry (it is still on the stream), "gone" when the entry was deleted from the stream
-- (finished by a worker that reclaimed it, or deleted by hand), "missing" when the stream
-- never held it as far as it knows (Redis lost its data).
local function not_current(stream, entry)
  if #redis.call('XRANGE', stream, entry, entry) > 0 then return 'stale' end
  local info = redis.pcall('XINFO', 'STREAM', stream)
  if info.err then return 'missing' end
  for i = 1, #info - 1, 2 do
    if info[i] == 'max-deleted-entry-id' then
      local ms, seq = id_parts(entry)
      local dms, dseq = id_parts(info[i + 1])
      if ms < dms or (ms == dms and seq <= dseq) then return 'gone' end
    end
  end
  return 'missing'
end

-- How many attempts' errors a record keeps, and how much of each: enough to see a pattern
-- (the same error each time, or a different one), bounded however large a handler's output.
local ERRORS_KEPT = 10
local ERROR_BYTES_KEPT = 2000

-- An attempt's error appended to a history of errors (`errors`, a JSON array of
-- {attempt, at, error}, oldest first; `old` is its JSON text or nil), keeping the last
-- ERRORS_KEPT. `error` holds only the last one; the history lets `jobs show` tell each
-- attempt's error. `note_error` appends to a record's history.
local function with_error(old, attempt, at, message)
  local history = {}
  if old then
    local ok, decoded = pcall(cjson.decode, old)
    if ok and type(decoded) == 'table' then history = decoded end
  end
  history[#history + 1] = {attempt = tonumber(attempt) or 0, at = tonumber(at) or 0,
    error = string.sub(message or '', 1, ERROR_BYTES_KEPT)}
  while #history > ERRORS_KEPT do table.remove(history, 1) end
  return cjson.encode(history)
end

local function note_error(job_key, attempt, at, message)
  local old = redis.call('HGET', job_key, 'errors')
  redis.call('HSET', job_key, 'errors', with_error(old, attempt, at, message))
end

-- How many times the entry fields `fields` (field/value pairs) say their job was snoozed.
local function snoozes_in(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'snoozes' then return tonumber(fields[i + 1]) or 0 end
  end
  return 0
end

-- The retry of a failed fast-path attempt without a record (protocol 2.7): the entry
-- (`old`, its field/value pairs) rewritten with `attempts` (those spent), `error`, `errors`
-- (the history, as in a record) and `created_at`, onto the stream at once for a `delay` of
-- 0 (with `held`: its id key names it), else into `later` with its id key holding it until
-- due. The caller acknowledges and removes the old entry. Returns when the retry is due.
-- A `snooze` (protocol 2.13) spends no attempt and records no error: the attempt is not
-- counted, `snoozes` grows by one, and the job waits as `scheduled` rather than `failed`.
local function retry_entry(stream, later, id_key, entry, old, job_id, delivery, attempt, delay,
    message, now, snooze)
  -- A job without an id of its own is named in `retry_of`: `id` names only ids of a job's
  -- own, and an older worker runs such an entry as a job of its own rather than refuse it.
  local name_field = is_entry_id(job_id) and 'retry_of' or 'id'
  local fields, errors, created, last_error, snoozes = {name_field, job_id}, nil, nil, nil, 0
  for i = 1, #old, 2 do
    local name = old[i]
    if name == 'errors' then
      errors = old[i + 1]
    elseif name == 'created_at' then
      created = old[i + 1]
    elseif name == 'error' then
      last_error = old[i + 1]
    elseif name == 'snoozes' then
      snoozes = tonumber(old[i + 1]) or 0
    elseif name ~= 'id' and name ~= 'retry_of' and name ~= 'attempts'
        and name ~= 'run_at' and name ~= 'delay' and name ~= 'held' then
      fields[#fields + 1] = name
      fields[#fields + 1] = old[i + 1]
    end
  end
  -- Deliveries before this one were attempts whose worker stopped responding.
  for n = math.max(1, attempt - delivery + 1), attempt - 1 do
    errors = with_error(errors, n, now, 'attempt ' .. n .. ' interrupted: its worker stopped responding')
  end
  local spent = attempt
  if snooze then
    spent = attempt - 1
    snoozes = snoozes + 1
  else
    errors = with_error(errors, attempt, now, message)
    last_error = string.sub(message, 1, ERROR_BYTES_KEPT)
  end
  local extras = {{'attempts', tostring(spent)}, {'error', last_error}, {'errors', errors},
    {'created_at', created or tostring(id_parts(entry))}}
  if snoozes > 0 then extras[#extras + 1] = {'snoozes', tostring(snoozes)} end
  for _, extra in ipairs(extras) do
    if extra[2] then
      fields[#fields + 1] = extra[1]
      fields[#fields + 1] = extra[2]
    end
  end
  if delay == 0 then
    fields[#fields + 1] = 'held'
    fields[#fields + 1] = '1'
    redis.call('SET', id_key, redis.call('XADD', stream, '*', unpack(fields)))
    return now
  end
  local due = now + delay
  -- When it is due travels with it, so that reconciliation can put it back in time.
  fields[#fields + 1] = 'run_at'
  fields[#fields + 1] = tostring(due)
  redis.call('ZADD', later, due, job_id)
  redis.call('SET', id_key, pack_waiting(snooze and 'scheduled' or 'failed', fields))
  return due
end

-- Copies what an entry says of the job beyond what its worker passes (a retry's first
-- enqueue and errors, a snoozed job's count, when it expires) to its record.
local function keep_history(job, stream, entry)
  local e = redis.call('XRANGE', stream, entry, entry)
  if #e == 0 then return end
  local f = e[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'errors' or f[i] == 'error' or f[i] == 'created_at' or f[i] == 'snoozes'
        or f[i] == 'expires_at' or f[i] == 'group' then
      redis.call('HSET', job, f[i], f[i + 1])
    end
  end
end

-- Protocol 2's fast path: a job whose stream entry carries it whole has no record while
-- it runs. Its attempt is this worker's while the entry is pending under it with the
-- delivery count the attempt began with: any reclaim, by this worker or another, counts a
-- delivery, so a zombie's late write is refused (rule 3 without a lease token).
-- What a worker passes for such an attempt, from ARGV[at]: delivery count (0 = the attempt
-- has a record), type, payload, content type, attempt, max attempts, timeout ms, backoff,
-- trace, started at ms.
-- Writes the record of a fast-path job from what its worker passes, so that a failure, a
-- hand-back or progress follows the record's rules from here on. Does nothing when a
-- record exists (it leads: the job was adopted before, or cancelled) or the attempt had a
-- record from the start. Returns "ok", or why the attempt is no longer current.
local function adopt(job, job_id, queue, stream, group, consumer, entry, lease, at)
  local delivery = tonumber(ARGV[at]) or 0
  if delivery == 0 or redis.call('EXISTS', job) == 1 then return 'ok' end
  if owned_by(stream, group, consumer, {entry})[entry] ~= delivery then
    return not_current(stream, entry)
  end
  local created = id_parts(entry)
  redis.call('HSET', job, 'id', job_id, 'type', ARGV[at + 1], 'queue', queue,
    'payload', ARGV[at + 2], 'content_type', ARGV[at + 3], 'status', 'running',
    'attempts', ARGV[at + 4], 'max_attempts', ARGV[at + 5], 'timeout_ms', ARGV[at + 6],
    'backoff', ARGV[at + 7], 'created_at', created, 'run_at', created,
    'started_at', ARGV[at + 9], 'entry', entry, 'worker', consumer, 'lease', lease, 'v', 2)
  if ARGV[at + 8] ~= '' then redis.call('HSET', job, 'trace', ARGV[at + 8]) end
  -- A retry's entry carries the job's history (protocol 2.7), and any entry may carry its
  -- snoozes and expiry: the record takes them over.
  keep_history(job, stream, entry)
  forget_id_key(job, job_id)
  -- Each delivery before this one was an attempt whose worker stopped responding: nothing
  -- was written then, so the history learns of them here.
  local attempt = tonumber(ARGV[at + 4]) or 0
  for n = math.max(1, attempt - delivery + 1), attempt - 1 do
    note_error(job, n, ARGV[at + 9], 'attempt ' .. n .. ' interrupted: its worker stopped responding')
  end
  return 'ok'
end

-- A timeout as a producer may write it in an entry (`1500`, `500ms`, `30s`, `5m`, `1h`),
-- in milliseconds; nil when it is none of these.
local function duration_ms(text)
  local n, unit = string.match(text or '', '^%s*(%d+)%s*(%a*)%s*$')
  local scale = ({[''] = 1, ms = 1, s = 1000, m = 60000, h = 3600000})[unit or 'x']
  if not n or not scale then return nil end
  return tonumber(n) * scale
end

-- The record of a fast-path job built from its stream entry (field/value pairs), with the
-- attempts it has been charged so far (those the entry carries, plus `extra`); `entry` is
-- '' for a job waiting in `later`, whose fields are those of the entry it will become.
local function record_from_entry(job, job_id, queue, entry, fields, extra)
  local e = {}
  for i = 1, #fields, 2 do e[fields[i]] = fields[i + 1] end
  local created = id_parts(entry)
  if e['created_at'] then created = e['created_at'] end
  redis.call('HSET', job, 'id', job_id, 'type', e['type'] or '', 'queue', queue,
    'payload', e['payload'] or '', 'content_type', e['content_type'] or '',
    'attempts', (tonumber(e['attempts']) or 0) + extra, 'created_at', created,
    'run_at', e['run_at'] or created, 'entry', entry, 'v', e['v'] or '1')
  for _, name in ipairs({'max_attempts', 'backoff', 'error', 'errors', 'expires_at', 'group'}) do
    if e[name] and e[name] ~= '' then redis.call('HSET', job, name, e[name]) end
  end
  -- The record keeps the trace context as one value: traceparent, then tracestate on a
  -- second line.
  local trace = e['traceparent'] or e['trace']
  if trace and trace ~= '' then
    if e['tracestate'] and e['tracestate'] ~= '' then trace = trace .. '\n' .. e['tracestate'] end
    redis.call('HSET', job, 'trace', trace)
  end
  local timeout = duration_ms(e['timeout'])
  if timeout then redis.call('HSET', job, 'timeout_ms', timeout) end
  forget_id_key(job, job_id)
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


-- Another status's index of the same queue, from one index's key (`…:idx:<status>`).
local function index_for(idx_key, status)
  return (string.gsub(idx_key, 'idx:%a+$', 'idx:' .. status))
end

-- Whether a job whose record or entry says `expires_at` may no longer start at `now`
-- (protocol 2.16; absent, empty or 0: it never expires).
local function has_expired(expires_at, now)
  local at = tonumber(expires_at)
  return at ~= nil and at > 0 and at <= now
end

-- Gives back the place a job of a group held as it ends for good some other way than a
-- completion (dead, expired), and lets its group's next jobs through at once rather than
-- at the next promote pass that finds it ended. Its group is its record's.
local function leave_group(job_key, job_id)
  local group = redis.call('HGET', job_key, 'group')
  if not group or group == '' then return end
  local qp = queue_prefix_of(job_prefix_of(job_key, job_id))
  if redis.call('SREM', qp .. 'group_flight:' .. group, job_id) == 1
      and redis.call('LLEN', qp .. 'group:' .. group) > 0 then
    group_fill(qp, qp .. 'q', group, GROUP_FILL_MOST)
  end
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

-- Counts the end of the batch member `ref` (`<queue> <id>`) of the batch `id` of the
-- queue whose prefix is `bqp`, and fires what that decides (the `death` callback at the
-- first end without a completion). Returns whether the member's edge stays: a dead
-- member may yet complete after an operator's retry, and is counted again then.
local function batch_told(bqp, id, ref, outcome, now, retention)
  local key = bqp .. 'batch:' .. id
  if redis.call('EXISTS', key) == 0 then return false end
  local was_dead = redis.call('HDEL', key, 'm:' .. ref) == 1
  redis.call('HINCRBY', key, was_dead and 'dead' or 'pending', -1)
  local stays = false
  if outcome == 'completed' then
    redis.call('HINCRBY', key, 'completed', 1)
  elseif outcome == 'dead' then
    redis.call('HSET', key, 'm:' .. ref, 'dead')
    redis.call('HINCRBY', key, 'dead', 1)
    stays = true
  else
    redis.call('HINCRBY', key, 'ended', 1)
  end
  if outcome ~= 'completed' then batch_callback(key, 'death', true, nil, now, retention) end
  batch_settled(key, now, retention)
  return stays
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

-- How many of a job's edges out (children and batches waiting for it) one `LPOP` takes:
-- a job's edges are taken in one call up to this many, in more beyond.
local EDGES_PER_POP = 100000

-- Tells child `cid` of the queue whose prefix is `cqp`, waiting under `policy`, that its
-- parent `ref` (`<queue> <id>`) ended (`pout`, with result `pres` or nil). A child it
-- cancels is added to `todo`, for its own children to be told. Returns whether the edge
-- stays (a `wait` edge of a dead parent, which a retry may still complete).
local function tell_child(cqp, cid, policy, ref, pout, pres, now, retention, todo)
  local deps = cqp .. 'deps:' .. cid
  local state = redis.call('HMGET', deps, 'left', 'blocked')
  if not state[1] then return false end
  if pout == 'completed' or policy == 'run' then
    if redis.call('HSETNX', deps, 'o:' .. ref, pout) == 1 then
      if pres and pres ~= '' then redis.call('HSET', deps, 'r:' .. ref, pres) end
      -- Only a child some parent blocks (a `wait` edge of a dead parent) looks further.
      if (tonumber(state[2]) or 0) > 0 and redis.call('HDEL', deps, 'b:' .. ref) == 1 then
        redis.call('HINCRBY', deps, 'blocked', -1)
      end
      if redis.call('HINCRBY', deps, 'left', -1) <= 0 then release_waiting(cqp, cid, now) end
    end
    return false
  end
  if policy == 'wait' and pout ~= 'deleted' then
    if redis.call('HSETNX', deps, 'b:' .. ref, pout) == 1 then
      redis.call('HINCRBY', deps, 'blocked', 1)
    end
    return true
  end
  if end_waiting(cqp, cid, 'cancelled', 'parent ' .. ref .. ' ' .. pout, now, retention) and
      redis.call('SISMEMBER', cqp .. 'hooked', cid) == 1 then
    todo[#todo + 1] = {cqp, cid, 'cancelled', nil}
  end
  return false
end

-- Tells the children of job `id` of the queue whose prefix is `qp` how it ended
-- (`outcome`: `completed`, `dead`, `expired`, `cancelled`, `deleted`; `result` its
-- result or nil). A completion counts for every child, and so does any end for a child
-- whose edge says `run`; under `wait` the child stays, blocked, until an operator's retry
-- of the parent completes (its edge is kept; a parent deleted can never complete, and its
-- child is cancelled); under `cancel` (the default) the child ends
-- `cancelled`, and its own children hear of it in turn. A child whose last parent is
-- done is enqueued at once. Each edge is told once: a completion is noted with `HSETNX`.
-- An edge to a batch counts the end in the batch (see `batch_told`).
local function settle_dependents(qp, id, outcome, result, now, retention)
  local todo = {{qp, id, outcome, result}}
  while #todo > 0 do
    local p = table.remove(todo)
    local pqp, pid, pout, pres = p[1], p[2], p[3], p[4]
    -- Taken out of `hooked` and its edges taken whole (`LPOP` with a count empties and
    -- deletes the list in one command); what stays is put back below.
    local edges = {}
    if redis.call('SREM', pqp .. 'hooked', pid) == 1 then
      edges = redis.call('LPOP', pqp .. 'hook:' .. pid, EDGES_PER_POP)
      if type(edges) ~= 'table' then edges = {} end
      while #edges % EDGES_PER_POP == 0 and #edges > 0 do
        local more = redis.call('LPOP', pqp .. 'hook:' .. pid, EDGES_PER_POP)
        if type(more) ~= 'table' then break end
        for _, edge in ipairs(more) do edges[#edges + 1] = edge end
      end
    end
    local hook = pqp .. 'hook:' .. pid
    local ns, pq = queue_parts(pqp)
    local ref = pq .. ' ' .. pid
    local kept = {}
    for _, edge in ipairs(edges) do
      local policy, cq, cid = string.match(edge, '^(%S+) (%S+) (%S+)$')
      local stays = false
      if policy == 'batch' then
        stays = batch_told(queue_prefix(ns, cq), cid, ref, pout, now, retention)
      elseif policy then
        stays = tell_child(queue_prefix(ns, cq), cid, policy, ref, pout, pres, now, retention,
          todo)
      end
      if stays then kept[#kept + 1] = edge end
    end
    if #kept > 0 then
      redis.call('RPUSH', hook, unpack(kept))
      redis.call('SADD', pqp .. 'hooked', pid)
    end
  end
end

-- How a job stands, by what its queue keeps (prefix `qp`): `live` (not ended),
-- `completed` (with its result when its record keeps one), its end (`dead`,
-- `cancelled`, `expired`), or nil (not known: never enqueued, or forgotten).
local function job_state(qp, id)
  local f = redis.call('HMGET', qp .. 'job:' .. id, 'status', 'result')
  if f[1] then
    if is_final(f[1]) then return f[1], f[2] end
    return 'live'
  end
  local held = redis.call('GET', qp .. 'id:' .. id)
  if held then
    if string.sub(held, 1, 5) == 'done ' then return 'completed' end
    return 'live'
  end
  if redis.call('ZSCORE', qp .. 'done_ids', id) then return 'completed' end
  if is_entry_id(id) and #redis.call('XRANGE', qp .. 'q', id, id) > 0 then return 'live' end
  return nil
end

-- End a job that may no longer start as `expired`: its record says when, its unique key
-- is released, and the expired index lists it, kept as long and as many as completed
-- records (`retention` ms, `max_len`), so a backlog that expires at once stays bounded.
local function expire_job(job_key, idx_expired, job_id, now, retention, max_len)
  forget_id_key(job_key, job_id)
  leave_group(job_key, job_id)
  redis.call('HSET', job_key, 'status', 'expired', 'finished_at', now)
  redis.call('HDEL', job_key, 'lease', 'next_run_at')
  release_unique(job_key, job_id)
  if retention > 0 then redis.call('PEXPIRE', job_key, retention) end
  index_terminal(idx_expired, job_id, now, retention)
  trim_finished(idx_expired, job_prefix_of(job_key, job_id), 'expired', max_len)
  settle_dependents(queue_prefix_of(job_prefix_of(job_key, job_id)), job_id, 'expired', nil,
    now, retention)
end

-- Move a job to the dead-letter queue: record, DLQ stream entry, index, expiry.
local function bury(job_key, dead_stream, idx_dead, job_id, reason, now, retention, dead_max_len)
  forget_id_key(job_key, job_id)
  leave_group(job_key, job_id)
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
  settle_dependents(queue_prefix_of(job_prefix_of(job_key, job_id)), job_id, 'dead', nil,
    now, retention)
end

