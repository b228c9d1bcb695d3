-- start: begin attempts of the jobs behind delivered stream entries of one queue, a batch
-- per call (rules 2 and 3).
-- KEYS[1] stream   KEYS[2] dead stream   KEYS[3] dead index   KEYS[4] delayed set
-- KEYS[4+i] job record of entry i
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] dead retention ms   ARGV[4] dead stream max length
-- ARGV[5] expired retention ms   ARGV[6] expired records kept at most (0: no count limit)
-- then 15 values per entry i, from ARGV[7 + 15*(i-1)]:
--   entry id, job id, lease token, and for an entry XADDed by hand with no record yet
--   (type non-empty) the record's fields: type, payload, content type, max attempts,
--   timeout ms, backoff, queue name, protocol version, run at ms (0 = now), attempts
--   already spent (a copy put back by reconciliation carries them), trace context,
--   expires at ms (0 = never)
-- Returns one reply per entry: {"started", type, payload, content_type, attempts,
-- max_attempts, timeout_ms, backoff, trace, snoozes}, {"scheduled", due ms} (a raw entry whose
-- run_at is ahead: its record waits in `delayed`), {"dead", reason} (attempts spent:
-- poison pill), {"expired", expires at ms, type} (its `expires_at` had come: it ended without
-- starting, in the queue's expired index) or {"skipped", why}; a skipped entry is acknowledged and removed unless it
-- is no longer ours ("not_owner"), names no known job ("orphan") or gives a new job an id
-- of a stream entry id's form ("reserved_id"): those two are left for the caller to bury.
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local dead_retention, dead_max_len = tonumber(ARGV[3]), tonumber(ARGV[4])
local expired_retention, expired_max_len = tonumber(ARGV[5]), tonumber(ARGV[6])
local idx_expired = index_for(KEYS[3], 'expired')
local now = now_ms()
-- Entry id → delivery count for the batch's entries still pending under this consumer;
-- filled below, before any entry starts.
local owned

local function start_one(job, a)
  local entry, job_id, lease, raw_type = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  -- A slow fetch may have lost the entry to a reclaimer in the meantime: never run it twice.
  if not owned[entry] then return {'skipped', 'not_owner'} end

  -- One read for everything this attempt needs (field order matters below).
  local f = redis.call('HMGET', job, 'status', 'entry', 'worker', 'attempts', 'max_attempts',
    'type', 'payload', 'content_type', 'timeout_ms', 'backoff', 'trace', 'error', 'snoozes',
    'expires_at')
  if not f[1] then
    -- Names a job that has no record and says nothing to make one from: the caller buries it.
    if raw_type == '' then return {'skipped', 'orphan'} end
    -- An id of an entry id's form belongs to a job without an id of its own: a new job may
    -- not take another entry's, or it would shadow that job. (A copy put back by
    -- reconciliation carries one, but its record exists; an entry without an `id` that
    -- waits for its `run_at` is named by its own entry id.)
    if job_id ~= entry and names_entry(job_id) then return {'skipped', 'reserved_id'} end
    local due = tonumber(ARGV[a + 11]) or 0
    redis.call('HSET', job, 'id', job_id, 'type', raw_type, 'queue', ARGV[a + 9],
      'payload', ARGV[a + 4], 'content_type', ARGV[a + 5], 'attempts', ARGV[a + 12],
      'max_attempts', ARGV[a + 6], 'timeout_ms', ARGV[a + 7], 'backoff', ARGV[a + 8],
      'created_at', now, 'run_at', math.max(due, now), 'entry', entry, 'v', ARGV[a + 10])
    local trace = ARGV[a + 13]
    if trace ~= '' then redis.call('HSET', job, 'trace', trace) end
    local expires = ARGV[a + 14]
    if expires ~= '0' then redis.call('HSET', job, 'expires_at', expires) end
    if has_expired(expires, now) then
      expire_job(job, idx_expired, job_id, now, expired_retention, expired_max_len)
      ack_and_delete(stream, group, entry)
      return {'expired', tostring(tonumber(expires)), raw_type}
    end
    if due > now then
      -- A producer in another language asked for later: wait in `delayed` like any
      -- scheduled job; promotion puts it back on the stream when due.
      redis.call('HSET', job, 'status', 'scheduled')
      -- A job with an id of its own runs without its record once due, as one the
      -- published script enqueued for later.
      if not is_entry_id(job_id) then redis.call('HSET', job, 'fast', 1) end
      redis.call('HDEL', job, 'entry')
      redis.call('ZADD', KEYS[4], due, job_id)
      ack_and_delete(stream, group, entry)
      return {'scheduled', tostring(due)}
    end
    f = {'pending', entry, false, ARGV[a + 12], ARGV[a + 6], raw_type, ARGV[a + 4], ARGV[a + 5],
      ARGV[a + 7], ARGV[a + 8], trace ~= '' and trace or false, false}
  else
    local status = f[1]
    if f[2] ~= entry then
      -- The same producer id XADDed twice, or an entry left behind: the job runs once.
      ack_and_delete(stream, group, entry)
      return {'skipped', 'duplicate'}
    end
    if is_final(status) then
      ack_and_delete(stream, group, entry)
      return {'skipped', status}
    end
    if raw_type ~= '' then
      -- A record built from an entry that left fields out (a fast-path job put back by
      -- reconciliation): the worker's defaults fill them.
      for _, fill in ipairs({{5, 'max_attempts', 6}, {9, 'timeout_ms', 7}, {10, 'backoff', 8}}) do
        local i, name, arg = fill[1], fill[2], fill[3]
        if not f[i] or f[i] == '' then
          f[i] = ARGV[a + arg]
          redis.call('HSET', job, name, f[i])
        end
      end
    end
    if status == 'running' then
      -- Reclaimed from a worker that stopped responding mid-attempt.
      f[12] = 'attempt ' .. (f[4] or '?') .. ' interrupted: worker ' .. (f[3] or '?') ..
        ' stopped responding'
      redis.call('HSET', job, 'error', f[12])
      note_error(job, f[4], now, f[12])
    end
    -- No attempt starts once the job expired: not a first one, a retry, nor the rerun of
    -- one whose worker stopped responding.
    if has_expired(f[14], now) then
      expire_job(job, idx_expired, job_id, now, expired_retention, expired_max_len)
      ack_and_delete(stream, group, entry)
      return {'expired', tostring(tonumber(f[14])), f[6] or ''}
    end
  end

  local attempts = (tonumber(f[4]) or 0) + 1
  local max_attempts = tonumber(f[5]) or 1
  if attempts > max_attempts then
    redis.call('HSET', job, 'attempts', max_attempts)
    local reason = 'attempts spent (' .. max_attempts .. ' of ' .. max_attempts .. ')'
    if f[12] and f[12] ~= '' then reason = reason .. '; last error: ' .. f[12] end
    bury(job, KEYS[2], KEYS[3], job_id, reason, now, dead_retention, dead_max_len)
    ack_and_delete(stream, group, entry)
    return {'dead', reason}
  end

  redis.call('HSET', job, 'status', 'running', 'attempts', attempts, 'started_at', now,
    'worker', consumer, 'lease', lease)
  return {'started', f[6] or '', f[7] or '', f[8] or '', tostring(attempts), tostring(max_attempts),
    f[9] or '0', f[10] or '', f[11] or '', f[13] or '0'}
end

-- Which entries are still ours, in one read for the batch; their idle time is reset in one
-- XCLAIM, as they may have waited for a free slot, so that no reclaimer takes them before
-- this worker's first heartbeat (rule 4).
local entries = {}
for i = 5, #KEYS do entries[#entries + 1] = ARGV[7 + 15 * (i - 5)] end
owned = owned_by(stream, group, consumer, entries)
local mine = {}
for _, e in ipairs(entries) do if owned[e] then mine[#mine + 1] = e end end
reset_idle(stream, group, consumer, mine)

local replies = {}
for i = 5, #KEYS do
  replies[#replies + 1] = start_one(KEYS[i], 7 + 15 * (i - 5))
end
return replies
