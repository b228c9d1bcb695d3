-- heartbeat: keep this worker's in-flight entries fresh so no reclaimer takes them (rule 4).
-- KEYS[1] stream   KEYS[2..n] job records
-- ARGV[1] group   ARGV[2] consumer   then per job (in KEYS order): entry id, lease token
-- Returns, per job, "ok", "lost" (lease or entry taken by another worker), "cancelled" or
-- "missing" (no record: Redis lost its data, or the record was deleted).
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local out = {}
for i = 2, #KEYS do
  local entry, token = ARGV[2 * i - 1], ARGV[2 * i]
  local f = redis.call('HMGET', KEYS[i], 'status', 'lease')
  if f[1] == 'cancelled' then
    out[#out + 1] = 'cancelled'
  elseif not f[1] then
    out[#out + 1] = 'missing'
  elseif f[1] ~= 'running' or f[2] ~= token then
    out[#out + 1] = 'lost'
  else
    local pel = redis.call('XPENDING', stream, group, entry, entry, 1)
    if #pel == 0 or pel[1][2] ~= consumer then
      out[#out + 1] = 'lost'
    else
      -- Owner-checked refresh: resets the entry's idle time without counting a delivery.
      redis.call('XCLAIM', stream, group, consumer, 0, entry, 'JUSTID')
      out[#out + 1] = 'ok'
    end
  end
end
return out
