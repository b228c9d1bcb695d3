-- admit: let up to ARGV[2] jobs of a flow-limited queue start now, within its rate and its
-- concurrency cap; the worker runs that many and holds the rest back until told when.
-- KEYS[1] rate state (µs)   KEYS[2] holders (worker → lease end, ms)   KEYS[3] holds (worker → slots)
-- ARGV[1] worker id   ARGV[2] jobs wanted   ARGV[3] rate spacing in µs (0: no rate)
-- ARGV[4] burst   ARGV[5] concurrency cap (0: none)   ARGV[6] the worker's lease in ms
-- ARGV[7] spare starts of the rate wanted beyond them   ARGV[8] spare slots of the cap
-- wanted beyond them (each given only while twice as many would be left)
-- ARGV[9] the slots the worker believes it holds   ARGV[10] how many of the jobs wanted
-- start in slots it holds already (spares of its own)
-- Returns {admitted, spare starts, spare slots, left, wait_ms, ended}: how many may start,
-- the spares the worker may use for its next jobs, how many more could start now (-1: no
-- bound), when the rate has none left ms until its next one (else 0), and 1 when the
-- worker's hold had ended (it stopped beating for a lease and its slots went to others:
-- nothing is admitted, and its jobs under that hold run over the cap).
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(now_us / 1000)
local admitted = tonumber(ARGV[2])
local spacing = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local starts_wanted = spacing > 0 and tonumber(ARGV[7] or 0) or 0
local slots_wanted = cap > 0 and tonumber(ARGV[8] or 0) or 0
local believed = tonumber(ARGV[9] or 0)
local covered = cap > 0 and tonumber(ARGV[10] or 0) or 0

-- The cap: a holder whose lease ended (it stopped beating, by the liveness rule) holds
-- nothing; the slots of the others are in use.
local free = -1
if cap > 0 then
  local ended = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
  for _, holder in ipairs(ended) do redis.call('HDEL', KEYS[3], holder) end
  if #ended > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now) end
  if believed > 0 and not redis.call('HGET', KEYS[3], ARGV[1]) then
    return {0, 0, 0, 0, 0, 1}
  end
  local used = 0
  for _, n in ipairs(redis.call('HVALS', KEYS[3])) do used = used + tonumber(n) end
  free = math.max(cap - used, 0)
  if free + covered < admitted then admitted = free + covered end
end

-- The rate, as a GCRA: `tat` is when the next job could start if no burst were left.
local tat, tokens = 0, -1
if spacing > 0 then
  tat = math.max(tonumber(redis.call('GET', KEYS[1]) or 0), now_us)
  tokens = math.max(math.floor((now_us + burst * spacing - tat) / spacing), 0)
  if tokens < admitted then admitted = tokens end
end

-- Spares, for the worker's next jobs, only while the limit is far from reached.
local spare_starts, spare_slots = 0, 0
local slots_needed = math.max(admitted - covered, 0)
if starts_wanted > 0 and tokens - admitted >= 2 * starts_wanted then
  if cap == 0 or free - slots_needed >= 2 * starts_wanted then spare_starts = starts_wanted end
end
if slots_wanted > 0 and free - slots_needed >= 2 * slots_wanted then spare_slots = slots_wanted end

local slots_taken = slots_needed + spare_slots
if slots_taken > 0 then
  redis.call('HINCRBY', KEYS[3], ARGV[1], slots_taken)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), ARGV[1])
end
local left, wait = -1, 0
if cap > 0 then left = free - slots_taken end
if spacing > 0 then
  local starts_taken = admitted + spare_starts
  if starts_taken > 0 then
    tat = tat + starts_taken * spacing
    redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.floor((tat - now_us) / 1000) + 1000)
  end
  local more = tokens - starts_taken
  if left < 0 or more < left then left = more end
  if more == 0 then
    wait = math.max(math.ceil((tat - (burst - 1) * spacing - now_us) / 1000), 1)
  end
end
return {admitted, spare_starts, spare_slots, left, wait, 0}
