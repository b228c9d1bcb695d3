-- release_groups: after jobs of groups completed (protocol 2.17), give their places back
-- and let their groups' next jobs through to the stream while the windows have room. A
-- release lost with its worker costs only time: the next promote pass prunes the group
-- of jobs that ended (see promote.lua).
-- KEYS[1] stream
-- ARGV[1] the queue's record key prefix (`<ns>:{<queue>}:job:`; same hash tag)
-- ARGV[2..] group, job id pairs
-- Returns how many jobs it let through.
local stream, qp = KEYS[1], queue_prefix_of(ARGV[1])
local moved = 0
-- Read once for the call; a group with no line has nothing to let through.
local limits = nil
for i = 2, #ARGV - 1, 2 do
  redis.call('SREM', qp .. 'group_flight:' .. ARGV[i], ARGV[i + 1])
  if redis.call('LLEN', qp .. 'group:' .. ARGV[i]) > 0 then
    limits = limits or {group_window(qp), group_rate(qp)}
    moved = moved + group_fill(qp, stream, ARGV[i], GROUP_FILL_MOST, nil, limits)
  end
end
return moved
