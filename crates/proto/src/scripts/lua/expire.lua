-- expire: end the job of a delivered entry that may no longer start (its `expires_at` has
-- come by the server's clock, protocol 2.16) as `expired`, without running it. A job that
-- rode on the fast path gets a record built from its entry, so it can be read, listed and
-- counted; one whose record leads (progress, then its worker died) ends through it.
-- KEYS[1] stream   KEYS[2] job record   KEYS[3] expired index
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] entry id   ARGV[4] job id   ARGV[5] queue name
-- ARGV[6] retention ms   ARGV[7] expired records kept at most (0: no count limit)
-- ARGV[8] the delivery count the worker read the entry with
-- ARGV[9..] the entry's field/value pairs
-- Returns "expired"; "not_yet" when the server's clock says it may still start (the worker's
-- runs ahead: it starts the job as usual); or "skipped" when the entry is no longer this
-- consumer's at that delivery (a reclaim took it), or stands for a job that moved on
-- (removed).
local stream, group, entry, job_id = KEYS[1], ARGV[1], ARGV[3], ARGV[4]
local delivery = owned_by(stream, group, ARGV[2], {entry})[entry]
if delivery ~= tonumber(ARGV[8]) then return 'skipped' end
local fields, expires = {}, nil
for i = 9, #ARGV - 1, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
  if ARGV[i] == 'expires_at' then expires = ARGV[i + 1] end
end
local now = now_ms()
local f = redis.call('HMGET', KEYS[2], 'status', 'entry', 'expires_at')
if f[1] then
  -- The record leads: its entry is this one unless the job moved on.
  if f[2] ~= entry or is_final(f[1]) then
    ack_and_delete(stream, group, entry)
    return 'skipped'
  end
  expires = f[3] or expires
end
if not has_expired(expires, now) then return 'not_yet' end
if not f[1] then
  -- Deliveries before this one were attempts that began before the job expired.
  record_from_entry(KEYS[2], job_id, ARGV[5], entry, fields, delivery - 1)
end
expire_job(KEYS[2], KEYS[3], job_id, now, tonumber(ARGV[6]), tonumber(ARGV[7]))
ack_and_delete(stream, group, entry)
return 'expired'
