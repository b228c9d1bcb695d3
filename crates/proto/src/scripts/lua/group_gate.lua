-- group_gate: a job of a group whose entry reached its stream without passing its
-- group's gate (a raw XADD; protocol 2.18): let it run now if its group has room and a
-- turn, else take its entry off the stream into its group's line, to come back as a new
-- entry when its turn comes (see `group_fill`). A job already let through (a retry, a
-- reclaimed entry) runs.
-- KEYS[1] stream
-- ARGV[1] the queue's record key prefix (`<ns>:{<queue>}:job:`; same hash tag)
-- ARGV[2] consumer group   ARGV[3] consumer   ARGV[4] entry id   ARGV[5] its delivery count
-- Returns "go" (run it), "waits" (its entry is gone: it waits its turn) or "stale" (not
-- this worker's entry any more).
local stream, records = KEYS[1], ARGV[1]
local entry = ARGV[4]
if owned_by(stream, ARGV[2], ARGV[3], {entry})[entry] ~= tonumber(ARGV[5]) then
  return 'stale'
end
local e = redis.call('XRANGE', stream, entry, entry)
if #e == 0 then return 'stale' end
local fields = e[1][2]
-- Its name: an id of its own, the job an earlier entry carried, else this entry's id.
local job_id, named, group = nil, false, nil
for i = 1, #fields - 1, 2 do
  if fields[i] == 'id' then job_id, named = fields[i + 1], true end
  if fields[i] == 'retry_of' and not job_id then job_id, named = fields[i + 1], true end
  if fields[i] == 'group' and fields[i + 1] ~= '' then group = fields[i + 1] end
end
job_id = job_id or entry
if not group then return 'go' end
-- A job with a record went through its gate in the scripts that wrote its entry.
if redis.call('EXISTS', records .. job_id) == 1 then return 'go' end
local qp = queue_prefix_of(records)
if redis.call('SISMEMBER', qp .. 'group_flight:' .. group, job_id) == 1 then return 'go' end
local limits = group_limits({}, qp)
if not limits[1] and not limits[2] then return 'go' end
local id_key = qp .. 'id:' .. job_id
-- An id another entry or job holds: `start` refuses a duplicate as it does any.
local held = redis.call('GET', id_key)
if held and held ~= entry then return 'go' end
-- A job named by its entry keeps that name once its entry is gone, as a retry does.
if not named then
  table.insert(fields, 1, job_id)
  table.insert(fields, 1, 'retry_of')
end
-- It was enqueued when its entry was added.
with_created_at(fields, id_parts(entry))
if not wait_group_turn(qp, job_id, id_key, group, fields, now_ms(), limits) then
  return 'go'
end
ack_and_delete(stream, ARGV[2], entry)
return 'waits'
