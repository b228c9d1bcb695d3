-- batch: open a batch, add jobs to an open one, or seal it (protocol 2.19). A batch counts
-- its jobs' ends (see "Batches" in common.lua) and lets its callbacks go once each, when
-- what they wait for holds: `complete` once every job ended, `success` once every job
-- completed, `death` at the first job that ends without completing. Each call is checked
-- whole before anything is written: a refusal writes nothing.
-- KEYS[1] the stream of the batch's queue (where a cluster client sends the call)
-- ARGV[1] the namespace   ARGV[2] the batch's queue   ARGV[3] the batch's id
-- ARGV[4] `open` (create it, with its callbacks and first jobs), `add` (add jobs to it
--         while it is open) or `seal` (no job may be added from now on)
-- ARGV[5] `seal` to seal it in the same call, else empty
-- ARGV[6] how many callbacks (for `open`; 0 otherwise), then per callback its kind
--         (`success`, `complete` or `death`) and the published `enqueue` script's arguments
--         1 to 19 (no unique or debounce key; the length cap is ignored)
-- then how many jobs (at most 20 000 a call), then per job the `enqueue` script's
-- arguments 1 to 19, as for a callback
-- Returns {total, pending, completed, dead, ended, sealed (0 or 1)}.
-- Errors (nothing written): BAD_BATCH (its reason: the batch exists already or is not
-- known, it is sealed, a bad kind or name, an id twice or taken, too many jobs), and
-- BAD_ARG or BAD_ID as `enqueue` answers them, naming the job.
local MAX_BATCH_CALL_JOBS = 20000
local ARGS_PER_JOB = 19
local KINDS = {success = true, complete = true, death = true}

local ns, queue, id, mode, seal = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5] == 'seal'
local function refuse(text)
  return redis.error_reply('BAD_BATCH ' .. text)
end
if not is_name(queue) or not is_name(id) then return refuse('bad queue name or batch id') end
local bqp = queue_prefix(ns, queue)
local key = bqp .. 'batch:' .. id
local exists = redis.call('EXISTS', key) == 1
if mode == 'open' then
  if exists then return refuse('batch ' .. id .. ' exists already in queue ' .. queue) end
elseif mode == 'add' or mode == 'seal' then
  if not exists then return refuse('no batch ' .. id .. ' in queue ' .. queue) end
  if redis.call('HGET', key, 'sealed') == '1' then
    if mode == 'seal' then
      local f = redis.call('HMGET', key, 'total', 'pending', 'completed', 'dead', 'ended')
      return {f[1] or '0', f[2] or '0', f[3] or '0', f[4] or '0', f[5] or '0', '1'}
    end
    return refuse('batch ' .. id .. ' is sealed: no job may be added')
  end
else
  return refuse('mode ' .. tostring(mode) .. ' is none of open, add, seal')
end

-- Reads `count` jobs' arguments from ARGV at `at`, each after its kind when `kinded`.
local at = 7
local seen = {}
local function read_jobs(count, kinded)
  local jobs = {}
  for _ = 1, count do
    local kind
    if kinded then
      kind = ARGV[at]
      at = at + 1
      if not KINDS[kind] then
        return nil, 'callback kind ' .. tostring(kind) .. ' is none of success, complete, death'
      end
    end
    local A = {}
    for i = 1, ARGS_PER_JOB do A[i] = ARGV[at + i - 1] end
    at = at + ARGS_PER_JOB
    if A[ARGS_PER_JOB] == nil then return nil, 'a job is cut short' end
    local refusal = member_refusal(A, 'BAD_BATCH')
    if refusal then return nil, refusal, refusal end
    if seen[A[1]] then return nil, 'job id ' .. A[1] .. ' is in the call twice' end
    seen[A[1]] = true
    local qp = queue_prefix(ns, A[12])
    if redis.call('EXISTS', qp .. 'job:' .. A[1], qp .. 'id:' .. A[1]) > 0 or
        redis.call('ZSCORE', qp .. 'done_ids', A[1]) then
      return nil, 'job id ' .. A[1] .. ' is taken in queue ' .. A[12]
    end
    A[11] = '0'
    jobs[#jobs + 1] = {A = A, qp = qp, kind = kind}
  end
  return jobs
end

local callbacks_count = tonumber(ARGV[6]) or -1
if callbacks_count < 0 or callbacks_count > 3 or (mode ~= 'open' and callbacks_count > 0) then
  return refuse('callbacks are given when the batch is opened, at most one of each kind')
end
local callbacks, why, full = read_jobs(callbacks_count, true)
if not callbacks then return full and redis.error_reply(full) or refuse(why) end
local kinds = {}
for _, cb in ipairs(callbacks) do
  if kinds[cb.kind] then return refuse('callback ' .. cb.kind .. ' is given twice') end
  kinds[cb.kind] = true
end
local count = tonumber(ARGV[at])
at = at + 1
if not count or count < 0 or count > MAX_BATCH_CALL_JOBS or count % 1 ~= 0 then
  return refuse('a call adds 0 to ' .. MAX_BATCH_CALL_JOBS .. ' jobs, not ' .. tostring(ARGV[at - 1]))
end
if mode == 'seal' and count > 0 then return refuse('a seal adds no job') end
local jobs
jobs, why, full = read_jobs(count, false)
if not jobs then return full and redis.error_reply(full) or refuse(why) end
if at ~= #ARGV + 1 then return refuse('the arguments do not match the counts given') end

local now = now_ms()
if mode == 'open' then
  redis.call('HSET', key, 'total', 0, 'pending', 0, 'completed', 0, 'dead', 0, 'ended', 0,
    'sealed', 0, 'created_at', now)
  for _, cb in ipairs(callbacks) do
    local A = cb.A
    local deps = cb.qp .. 'deps:' .. A[1]
    redis.call('HSET', deps, 'left', 1, 'edges', 1, 'blocked', 0, 'job', cmsgpack.pack(A),
      'type', A[2], 'created_at', now, 'batch', queue .. ' ' .. id)
    redis.call('SET', cb.qp .. 'id:' .. A[1], 'waiting')
    redis.call('ZADD', cb.qp .. 'waiting', now, A[1])
    redis.call('HSET', key, 'cb:' .. cb.kind, A[12] .. ' ' .. A[1])
  end
end
local edge = 'batch ' .. queue .. ' ' .. id
local batches = {}
for _, job in ipairs(jobs) do
  local A = job.A
  local batch = batches[job.qp]
  if not batch then
    batch = {}
    batches[job.qp] = batch
  end
  local reply = enqueue_job(job.qp .. 'q', job.qp .. 'job:' .. A[1], job.qp .. 'delayed', nil,
    A, 0, batch, nil, A[18] or '0', A[19] or '')
  if type(reply) == 'string' then return redis.error_reply(reply) end
  redis.call('RPUSH', job.qp .. 'hook:' .. A[1], edge)
  redis.call('SADD', job.qp .. 'hooked', A[1])
end
if count > 0 then
  redis.call('HINCRBY', key, 'total', count)
  redis.call('HINCRBY', key, 'pending', count)
end
if seal or mode == 'seal' then
  redis.call('HSET', key, 'sealed', 1)
  batch_settled(key, now, 86400000)
end
local f = redis.call('HMGET', key, 'total', 'pending', 'completed', 'dead', 'ended', 'sealed')
return {f[1] or '0', f[2] or '0', f[3] or '0', f[4] or '0', f[5] or '0', f[6] or '0'}
