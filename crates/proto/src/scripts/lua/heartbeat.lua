-- heartbeat: keep this worker's in-flight entries fresh so no reclaimer takes them (rule 4).
-- KEYS[1] stream   KEYS[2..n] job records
-- ARGV[1] group   ARGV[2] consumer   then per job (in KEYS order): entry id, lease token
-- Returns, per job, "ok", "lost" (lease or entry taken by another worker), "cancelled" or
-- "missing" (no record: Redis lost its data, or the record was deleted).
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local entries = {}
for i = 2, #KEYS do entries[#entries + 1] = ARGV[2 * i - 1] end
local owned = owned_by(stream, group, consumer, entries)
local out, refresh = {}, {'XCLAIM', stream, group, consumer, 0}
for i = 2, #KEYS do
  local entry, token = ARGV[2 * i - 1], ARGV[2 * i]
  local f = redis.call('HMGET', KEYS[i], 'status', 'lease')
  if f[1] == 'cancelled' then
    out[#out + 1] = 'cancelled'
  elseif not f[1] then
    out[#out + 1] = 'missing'
  elseif f[1] ~= 'running' or f[2] ~= token or not owned[entry] then
    out[#out + 1] = 'lost'
  else
    refresh[#refresh + 1] = entry
    out[#out + 1] = 'ok'
  end
end
-- Owner-checked refresh, one call for all: resets the entries' idle time without counting
-- a delivery.
if #refresh > 5 then
  refresh[#refresh + 1] = 'JUSTID'
  redis.call(unpack(refresh))
end
return out
