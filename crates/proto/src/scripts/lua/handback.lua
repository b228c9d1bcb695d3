-- handback: return a running job to its stream on shutdown; the attempt is not charged.
-- KEYS[1] stream   KEYS[2] job record
-- ARGV[1] entry id   ARGV[2] group   ARGV[3] lease token   ARGV[4] consumer   ARGV[5] job id
-- ARGV[6] queue name   then, from ARGV[7], what a fast-path attempt passes (see `adopt`)
-- Returns "ok", "stale", "cancelled" or "missing".
local adopted = adopt(KEYS[2], ARGV[5], ARGV[6], KEYS[1], ARGV[2], ARGV[4], ARGV[1], ARGV[3], 7)
if adopted ~= 'ok' then return adopted end
local f = redis.call('HMGET', KEYS[2], 'status', 'lease', 'id')
if f[1] == 'cancelled' then return 'cancelled' end
if not f[1] then return 'missing' end
if f[1] ~= 'running' or f[2] ~= ARGV[3] then return 'stale' end
redis.call('HINCRBY', KEYS[2], 'attempts', -1)
local entry = redis.call('XADD', KEYS[1], '*', 'id', f[3])
redis.call('HSET', KEYS[2], 'status', 'pending', 'entry', entry)
redis.call('HDEL', KEYS[2], 'lease', 'worker', 'started_at')
ack_and_delete(KEYS[1], ARGV[2], ARGV[1])
return 'ok'
