-- reset_stream_id: bring back a stream whose last id was pushed far ahead of the clock (an
-- entry XADDed by hand at a chosen id, up to the last possible one): Redis then refuses
-- every `XADD *` ("exhausted the last possible ID") or hands out ids in the future. Once
-- the entries ahead are gone (workers dead-letter them), the stream's last id, and each
-- consumer group's last-delivered id, go back to its newest remaining entry.
-- KEYS[1] stream
-- ARGV[1] the server's time in ms   ARGV[2] how far ahead of it an id may be, in ms
-- ARGV[3] "repair" to reset, anything else to only look
-- Returns "unchanged" (nothing ahead), "entry_ahead" (an entry ahead is still there: the
-- workers dead-letter it first), "ahead" (would reset, when only looking) or "reset".
local stream = KEYS[1]
local limit = tonumber(ARGV[1]) + tonumber(ARGV[2])
local info = redis.pcall('XINFO', 'STREAM', stream)
if info.err then return 'unchanged' end
local last
for i = 1, #info - 1, 2 do
  if info[i] == 'last-generated-id' then last = info[i + 1] end
end
-- Compared as text where the numbers outgrow Lua's: a longer run of digits is larger.
local function ahead(id)
  local ms = string.match(id or '', '^(%d+)-%d+$')
  if not ms then return false end
  return #ms > 15 or tonumber(ms) > limit
end
if not ahead(last) then return 'unchanged' end
local top = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
local newest = '0-1'
if #top > 0 then
  newest = top[1][1]
  if ahead(newest) then return 'entry_ahead' end
end
if ARGV[3] ~= 'repair' then return 'ahead' end
redis.call('XSETID', stream, newest, 'MAXDELETEDID', newest)
for _, group in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
  local name, delivered
  for i = 1, #group - 1, 2 do
    if group[i] == 'name' then name = group[i + 1] end
    if group[i] == 'last-delivered-id' then delivered = group[i + 1] end
  end
  if name and ahead(delivered) then
    redis.call('XGROUP', 'SETID', stream, name, newest)
  end
end
return 'reset'
