-- putback: return delivered entries that never started to their stream, unrun and
-- uncharged: their queue was paused when they arrived. Each entry still pending under
-- this consumer is copied to the stream's end (a `delay` becomes the `run_at` it meant,
-- so the wait does not start over), its record, if it has one that names it, is pointed
-- at the copy, and the entry is acknowledged and removed. Fast-path entries (the whole
-- job, with or without an `id`) go back through `handback` instead, which keeps their
-- job id.
-- KEYS[1] stream   KEYS[1+i] job record of entry i
-- ARGV[1] group   ARGV[2] consumer   ARGV[2+i] entry id i
-- Returns the number of entries put back.
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local entries = {}
for i = 3, #ARGV do entries[#entries + 1] = ARGV[i] end
local owned = owned_by(stream, group, consumer, entries)
local moved = 0
for i, entry in ipairs(entries) do
  if owned[entry] then
    local found = redis.call('XRANGE', stream, entry, entry)
    if #found > 0 then
      local fields, copy = found[1][2], {}
      for f = 1, #fields, 2 do
        local name, value = fields[f], fields[f + 1]
        local delay = name == 'delay' and duration_ms(value)
        if name == 'held' then
          -- A copy whose job has a record is claimed like any other, and the record leads.
        elseif delay then
          copy[#copy + 1] = 'run_at'
          copy[#copy + 1] = tostring(id_parts(entry) + delay)
        else
          copy[#copy + 1] = name
          copy[#copy + 1] = value
        end
      end
      local copied = redis.call('XADD', stream, '*', unpack(copy))
      local job = KEYS[1 + i]
      if redis.call('HGET', job, 'entry') == entry then redis.call('HSET', job, 'entry', copied) end
      moved = moved + 1
    end
    ack_and_delete(stream, group, entry)
  end
end
return moved
