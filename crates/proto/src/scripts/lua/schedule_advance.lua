-- schedule_advance: record a schedule's last fired tick, fenced by the leader's epoch so a
-- deposed leader can never move it (rule 5, 6). The tick only moves forward.
-- KEYS[1] fencing epoch   KEYS[2] schedule state   KEYS[3] schedule definitions
-- ARGV[1] our epoch   ARGV[2] last tick ms   ARGV[3] last job id ('' to keep)
-- ARGV[4] next tick ms ('' when none)   ARGV[5] fired at ms   ARGV[6] schedule name
-- Returns 1 if recorded, 0 if the epoch is stale, -1 if the tick would move backwards,
-- -2 if the schedule was removed meanwhile (its state is not recreated).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if redis.call('HEXISTS', KEYS[3], ARGV[6]) == 0 then return -2 end
local last = tonumber(redis.call('HGET', KEYS[2], 'last_tick') or '-1')
local tick = tonumber(ARGV[2])
if tick < last then return -1 end
redis.call('HSET', KEYS[2], 'last_tick', ARGV[2], 'epoch', ARGV[1], 'updated_at', ARGV[5])
redis.call('HSETNX', KEYS[2], 'since', ARGV[5])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[2], 'last_job', ARGV[3], 'last_fired_at', ARGV[5])
end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[2], 'next_tick', ARGV[4])
else
  redis.call('HDEL', KEYS[2], 'next_tick')
end
return 1
