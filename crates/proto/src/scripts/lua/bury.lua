-- bury: send a stream entry that cannot be decoded straight to the dead-letter queue
-- (rule 9: retrying cannot help). A record is kept so the entry can be inspected.
-- KEYS[1] stream   KEYS[2] job record   KEYS[3] dead stream   KEYS[4] dead index
-- KEYS[5] the record named by the entry id (the same key as KEYS[2] when the job id is it)
-- ARGV[1] entry id   ARGV[2] job id   ARGV[3] group   ARGV[4] reason   ARGV[5] retention ms
-- ARGV[6] dead stream max length   ARGV[7] queue name   ARGV[8..] the raw entry's field/value pairs
-- Returns "buried", or "skipped" when the entry is a duplicate of a job that moved on.
local now = now_ms()
local job, job_id = KEYS[2], ARGV[2]
-- An id of an entry id's form names a job only while that job's record exists: a record
-- made for it here would shadow the job that entry id names, so the dead entry is kept
-- under its own entry id instead.
if job_id ~= ARGV[1] and names_entry(job_id) and redis.call('EXISTS', job) == 0 then
  job, job_id = KEYS[5], ARGV[1]
end
if redis.call('EXISTS', job) == 0 then
  redis.call('HSET', job, 'id', job_id, 'queue', ARGV[7], 'attempts', 0, 'max_attempts', 0,
    'created_at', now, 'entry', ARGV[1])
  for i = 8, #ARGV - 1, 2 do
    local name = ARGV[i]
    if name == 'type' or name == 'payload' or name == 'content_type' then
      redis.call('HSET', job, name, ARGV[i + 1])
    else
      redis.call('HSET', job, 'raw_' .. name, ARGV[i + 1])
    end
  end
  bury(job, KEYS[3], KEYS[4], job_id, ARGV[4], now, tonumber(ARGV[5]), tonumber(ARGV[6]))
  ack_and_delete(KEYS[1], ARGV[3], ARGV[1])
  return 'buried'
end
-- A record exists. If this entry is the job's current one (a worker that could decode it
-- started it, then died), the job ends here, dead with the reason; otherwise the entry is
-- a duplicate of a job that moved on.
local f = redis.call('HMGET', job, 'status', 'entry')
if f[2] == ARGV[1] and not is_final(f[1]) then
  bury(job, KEYS[3], KEYS[4], job_id, ARGV[4], now, tonumber(ARGV[5]), tonumber(ARGV[6]))
  ack_and_delete(KEYS[1], ARGV[3], ARGV[1])
  return 'buried'
end
ack_and_delete(KEYS[1], ARGV[3], ARGV[1])
return 'skipped'
