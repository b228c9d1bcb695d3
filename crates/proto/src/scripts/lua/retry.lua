-- retry: put a dead job back on its stream with a fresh set of attempts (an operator's
-- `jobs retry`). Its dead-letter entry, when known, is deleted, so a queue's dead-letter
-- stream lists what is still dead. The last error stays on the record until the next, and
-- the history of errors keeps the earlier round: the new attempts append to it, numbered
-- from 1 again.
-- KEYS[1] stream   KEYS[2] job record   KEYS[3] dead index   KEYS[4] dead stream
-- ARGV[1] job id   ARGV[2] its dead-letter entry id ('' when unknown)
-- Returns "retried", "missing", or the job's status when it is not dead.
local status = redis.call('HGET', KEYS[2], 'status')
if not status then return 'missing' end
if status ~= 'dead' then return status end
local entry = redis.call('XADD', KEYS[1], '*', 'id', ARGV[1])
redis.call('HSET', KEYS[2], 'status', 'pending', 'entry', entry, 'attempts', 0)
redis.call('HDEL', KEYS[2], 'lease', 'worker', 'started_at', 'finished_at', 'next_run_at')
-- A dead record expires with the dead-letter retention; a live one must not.
redis.call('PERSIST', KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
if ARGV[2] ~= '' then redis.call('XDEL', KEYS[4], ARGV[2]) end
-- A job of a group runs at once, but counts in its group's window again while it lives
-- (protocol 2.17), so the group's next jobs wait for it.
local group = redis.call('HGET', KEYS[2], 'group')
if group and group ~= '' then
  local qp = queue_prefix_of(job_prefix_of(KEYS[2], ARGV[1]))
  if group_window(qp) then redis.call('SADD', qp .. 'group_flight:' .. group, ARGV[1]) end
end
return 'retried'
