-- heartbeat: keep this worker's in-flight entries fresh so no reclaimer takes them (rule 4).
-- KEYS[1] stream   KEYS[2..n] job records
-- ARGV[1] group   ARGV[2] consumer   ARGV[3], ARGV[4] the lowest and highest entry id
-- then per job (in KEYS order), from ARGV[5]: entry id, lease token,
-- delivery count (0 = the attempt has a record; else a fast-path attempt, current while its
-- entry is pending under this consumer at that count)
-- Returns, per job, "ok", "lost" (taken by another worker), "cancelled", "gone" (a
-- fast-path job's entry was deleted from the stream) or "missing" (no record: Redis lost
-- its data, or the record was deleted).
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local owned = owned_in(stream, group, consumer, ARGV[3], ARGV[4], #KEYS)
local out, refresh = {}, {}
for i = 2, #KEYS do
  local a = 5 + 3 * (i - 2)
  local entry, token, delivery = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local current
  if delivery ~= 0 then
    -- A fast-path attempt: its record is read only when its entry is no longer ours.
    if owned[entry] == delivery then
      current = true
    elseif was_cancelled(KEYS[i]) then
      out[#out + 1] = 'cancelled'
    else
      local why = not_current(stream, entry)
      if why == 'missing' or why == 'gone' then
        out[#out + 1] = why
      else
        current = false
      end
    end
  else
    local f = redis.call('HMGET', KEYS[i], 'status', 'lease')
    if f[1] == 'cancelled' then
      out[#out + 1] = 'cancelled'
    elseif f[1] then
      current = f[1] == 'running' and f[2] == token and owned[entry] ~= nil
    else
      out[#out + 1] = 'missing'
    end
  end
  if current ~= nil then
    if current then
      refresh[#refresh + 1] = entry
      out[#out + 1] = 'ok'
    else
      out[#out + 1] = 'lost'
    end
  end
end
-- Owner-checked refresh, one call for all.
reset_idle(stream, group, consumer, refresh)
return out
