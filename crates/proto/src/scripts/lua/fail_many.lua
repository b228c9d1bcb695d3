-- fail_many: retry failed fast-path attempts of one queue without a record, a batch per
-- call (protocol 2.8): what `fail` does for such an attempt, with one read of the pending
-- list and one acknowledgement for the batch. Only attempts with attempts left and a
-- retry delay are passed; each is current while its entry is pending under this worker at
-- the delivery count the attempt began with.
-- KEYS[1] stream   KEYS[2] later set
-- ARGV[1] group   ARGV[2] consumer   ARGV[3] the queue's record key prefix (id keys share
-- its hash tag)   ARGV[4], ARGV[5] the lowest and highest of the entry ids
-- then 6 values per attempt, from ARGV[6 + 6*(i-1)]: entry id, job id, delivery count,
-- attempt number, retry delay ms (0 or more), error message.
-- Returns one value per attempt: when its retry is due (ms, as text), "stale" or "gone"
-- (no longer this attempt's: nothing written), or "one" (its job has a record, or its
-- entry was deleted while it ran: the caller sends it through `fail`, which decides).
local stream, later, group, consumer = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local records = ARGV[3]
local ids = id_prefix_of(records)
local now = now_ms()
local owned = owned_in(stream, group, consumer, ARGV[4], ARGV[5], (#ARGV - 5) / 6)
local replies, retried = {}, {}

for a = 6, #ARGV, 6 do
  local entry, job_id, delivery = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local reply
  if owned[entry] ~= delivery then
    reply = not_current(stream, entry)
  elseif redis.call('EXISTS', records .. job_id) == 1 then
    reply = 'one'
  else
    local e = redis.call('XRANGE', stream, entry, entry)
    if #e == 0 then
      reply = 'one'
    else
      local due = retry_entry(stream, later, ids .. job_id, entry, e[1][2], job_id, delivery,
        tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4]), ARGV[a + 5], now)
      retried[#retried + 1] = entry
      reply = tostring(due)
    end
  end
  replies[#replies + 1] = reply
end

ack_and_delete_all(stream, group, retried)
return replies
