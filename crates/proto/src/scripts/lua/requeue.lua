-- requeue: put a job back on its stream when reconciliation finds it stranded. The
-- attempt it was on stays counted (it may have crashed its worker: rule 2).
-- KEYS[1] stream   KEYS[2] job record (of ARGV[5]'s job, or any key of the queue when unknown)
-- ARGV[1] group   ARGV[2] reason   ARGV[3] mode   ARGV[4] consumer (dead_consumer mode)
-- ARGV[5] entry id (dead_consumer mode)
-- Modes:
--   orphan_running  the record says running but its entry is no longer pending
--   orphan_pending  the record says pending but its entry is gone from the stream
--   dead_consumer   an entry pending under a consumer whose worker is gone
-- Returns "requeued", "copied" (an entry with no record was re-added as it was), "lost"
-- (an entry with no record whose data was deleted: nothing is left to run), "dropped" (a
-- duplicate entry of a job that moved on) or "unchanged" (nothing stranded).
local stream, job, group, reason, mode = KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3]

local function requeue_record(old_entry)
  local id = redis.call('HGET', job, 'id')
  local entry = redis.call('XADD', stream, '*', 'id', id)
  redis.call('HSET', job, 'status', 'pending', 'entry', entry, 'error', reason)
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

local f = redis.call('HMGET', job, 'status', 'entry')
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
  -- Never started (a raw entry): add its fields again so a live worker gets it.
  local e = redis.call('XRANGE', stream, entry, entry)
  ack_and_delete(stream, group, entry)
  if #e == 0 then return 'lost' end
  redis.call('XADD', stream, '*', unpack(e[1][2]))
  return 'copied'
end
ack_and_delete(stream, group, entry)
return 'dropped'
