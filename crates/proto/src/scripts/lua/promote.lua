-- promote: move due jobs from `delayed` onto their stream (rule 7). Safe to run from any
-- number of processes: only the caller whose ZREM removed an id enqueues it.
-- A job that has waited for its time and never ran, with an id of its own and no unique
-- key (its record says `fast`), leaves its record behind: its entry carries the whole
-- job, and its id key names the entry, as for a job enqueued to run now. Any other job
-- (a retry, a unique job) goes on with its record.
-- KEYS[1] delayed set   KEYS[2] stream
-- ARGV[1] job key prefix (same hash tag as KEYS)   ARGV[2] batch limit
-- Returns the number of jobs promoted.
local now = now_ms()
local ids_prefix = id_prefix_of(ARGV[1])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local promoted = 0

-- The whole job of a record that may run without it, as entry fields (nil otherwise), and
-- the record's status.
local function whole_entry(job, id)
  local f = redis.call('HMGET', job, 'status', 'fast', 'attempts', 'type', 'payload',
    'content_type', 'max_attempts', 'timeout_ms', 'backoff', 'trace', 'run_at')
  if f[1] ~= 'scheduled' or f[2] ~= '1' or (tonumber(f[3]) or 0) ~= 0 or is_entry_id(id) then
    return nil, f[1]
  end
  local fields = {'id', id, 'type', f[4] or '', 'payload', f[5] or ''}
  for _, extra in ipairs({{'content_type', f[6]}, {'max_attempts', f[7]}, {'timeout', f[8]},
      {'backoff', f[9]}, {'trace', f[10]}, {'run_at', f[11]}}) do
    if extra[2] and extra[2] ~= '' and extra[2] ~= '0' then
      fields[#fields + 1] = extra[1]
      fields[#fields + 1] = extra[2]
    end
  end
  return fields, f[1]
end

for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local job = ARGV[1] .. id
    local whole, status = whole_entry(job, id)
    if whole then
      local entry = redis.call('XADD', KEYS[2], '*', unpack(whole))
      redis.call('SET', ids_prefix .. id, entry)
      redis.call('DEL', job)
      promoted = promoted + 1
    elseif status == 'scheduled' or status == 'failed' then
      local entry = redis.call('XADD', KEYS[2], '*', 'id', id)
      redis.call('HSET', job, 'status', 'pending', 'entry', entry)
      promoted = promoted + 1
    end
  end
end
return promoted
