-- promote: move due jobs from `delayed` onto their stream (rule 7). Safe to run from any
-- number of processes: only the caller whose ZREM removed an id enqueues it.
-- KEYS[1] delayed set   KEYS[2] stream
-- ARGV[1] job key prefix (same hash tag as KEYS)   ARGV[2] batch limit
-- Returns the number of jobs promoted.
local now = now_ms()
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local promoted = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local job = ARGV[1] .. id
    local status = redis.call('HGET', job, 'status')
    if status == 'scheduled' or status == 'failed' then
      local entry = redis.call('XADD', KEYS[2], '*', 'id', id)
      redis.call('HSET', job, 'status', 'pending', 'entry', entry)
      promoted = promoted + 1
    end
  end
end
return promoted
