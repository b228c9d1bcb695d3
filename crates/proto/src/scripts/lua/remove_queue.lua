-- remove_queue: delete one partition of a queue that holds nothing to run: its stream (and
-- consumer group), delayed set, completions and the ids they remember, dead-letter
-- stream, indexes and the records they name. Refused while an entry waits or runs on the stream, or a job waits in
-- `delayed` or `later`, so no job is lost; finished history goes with it.
-- KEYS[1] stream   KEYS[2] delayed set   KEYS[3] done stream   KEYS[4] dead stream
-- KEYS[5..7] indexes of completed, dead and cancelled ids   KEYS[8] cancels counter
-- KEYS[9] index of expired ids
-- ARGV[1] the queue's record key prefix (same hash tag)
-- Returns "removed", or "busy" with nothing deleted.
if redis.call('XLEN', KEYS[1]) > 0 or redis.call('ZCARD', KEYS[2]) > 0
    or redis.call('ZCARD', later_of(KEYS[2])) > 0
    or redis.call('ZCARD', queue_prefix_of(ARGV[1]) .. 'groups') > 0 then
  return 'busy'
end
for _, i in ipairs({5, 6, 7, 9}) do
  local ids = redis.call('ZRANGE', KEYS[i], 0, -1)
  for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
end
-- A queue made again under this name starts without the old one's group window.
redis.call('DEL', queue_prefix_of(ARGV[1]) .. 'group_limit', queue_prefix_of(ARGV[1]) .. 'grouped')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9],
  done_ids_of(ARGV[1]), done_sizes_of(ARGV[1]), done_count_of(ARGV[1]))
return 'removed'
