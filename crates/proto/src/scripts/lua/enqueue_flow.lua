-- enqueue_flow: create a flow (protocol 2.19): jobs that may wait for other jobs, their
-- parents, in the flow or already enqueued, as a graph without cycles (a job may have
-- several parents and several children). All of it is checked before anything is
-- written, and written in this one call: the whole flow is created, or none of it. A job
-- without parents still to wait for is enqueued at once as the published `enqueue` script
-- would; the others wait (see "Dependencies" in common.lua) until their last parent is
-- done. A flow is let in whatever its queues' length caps: it is one unit. On Redis
-- Cluster every queue of a flow, and of its parents, must hash to one slot.
-- KEYS[1] the stream of the flow's first job (where a cluster client sends the call)
-- ARGV[1] the namespace   ARGV[2] how many jobs   ARGV[3] the flow's id (a name; empty for
-- none): the flow's jobs are listed under it in `flow:<id>` of the first job's queue for a
-- week, for `flotilla flows show`, and each waiting job's `deps` names it
-- then per job: the published `enqueue` script's arguments 1 to 19 (id, type, payload,
-- content type, max attempts, timeout ms, backoff, run at, delay ms, unique hold (must be
-- 0), queue length cap (ignored), queue, trace context, protocol version, unique mode
-- (ignored), debounce delay and max (must be 0), expires at, group), then how many parents
-- it waits for, then per parent: its queue, its id and what the child does if the parent
-- ends without completing: `cancel` (end as cancelled, the default), `run` (run anyway)
-- or `wait` (wait until an operator's retry of the parent completes; a parent already
-- ended must be dead for this).
-- Returns one word per job, in order: `created` (enqueued now) or `waiting`. A waiting
-- job's `deps` also names its parents (`parents`: one `<policy> <queue> <id>` a line).
-- Errors (nothing written): BAD_FLOW (its reason: a cycle, an unknown parent, a parent
-- already ended under `cancel`, an id twice, an id already taken, a bad name or policy,
-- too many jobs or edges), and BAD_ARG or BAD_ID as `enqueue` answers them, naming the job.
local MAX_FLOW_JOBS = 20000
local MAX_FLOW_EDGES = 200000
local ARGS_PER_JOB = 19
local POLICIES = {cancel = true, run = true, wait = true}

local ns, count, flow_id = ARGV[1], tonumber(ARGV[2]), ARGV[3]
if not count or count < 1 or count > MAX_FLOW_JOBS or count % 1 ~= 0 then
  return redis.error_reply('BAD_FLOW a flow holds 1 to ' .. MAX_FLOW_JOBS .. ' jobs, not ' ..
    tostring(ARGV[2]))
end

local function refuse(text)
  return redis.error_reply('BAD_FLOW ' .. text)
end

-- Read the jobs and their edges.
local jobs, index_of, edges_total = {}, {}, 0
local at = 4
for j = 1, count do
  local A = {}
  for i = 1, ARGS_PER_JOB do A[i] = ARGV[at + i - 1] end
  at = at + ARGS_PER_JOB
  local n = tonumber(ARGV[at])
  at = at + 1
  if A[ARGS_PER_JOB] == nil or not n or n < 0 or n % 1 ~= 0 then
    return refuse('job ' .. j .. ' is cut short: each job is ' .. ARGS_PER_JOB ..
      ' arguments, a parent count and three values per parent')
  end
  local parents = {}
  for _ = 1, n do
    parents[#parents + 1] = {queue = ARGV[at], id = ARGV[at + 1], policy = ARGV[at + 2]}
    at = at + 3
  end
  edges_total = edges_total + n
  if edges_total > MAX_FLOW_EDGES then
    return refuse('a flow holds at most ' .. MAX_FLOW_EDGES .. ' edges')
  end
  jobs[j] = {A = A, parents = parents, queue = A[12], id = A[1]}
end
if at ~= #ARGV + 1 then
  return refuse('the arguments do not match the job count ' .. count)
end

if flow_id ~= '' and not is_name(flow_id) then return refuse('bad flow id') end
local flow_key = flow_id ~= '' and queue_prefix(ns, jobs[1].queue) .. 'flow:' .. flow_id
if flow_key and redis.call('EXISTS', flow_key) == 1 then
  return refuse('flow ' .. flow_id .. ' exists already')
end

-- Check every job on its own, and that no id is taken.
for j, job in ipairs(jobs) do
  local refusal = member_refusal(job.A, 'BAD_FLOW')
  if refusal then return redis.error_reply(refusal) end
  if index_of[job.id] then return refuse('job id ' .. job.id .. ' is in the flow twice') end
  index_of[job.id] = j
  job.qp = queue_prefix(ns, job.queue)
  if job_state(job.qp, job.id) then
    return refuse('job id ' .. job.id .. ' is taken in queue ' .. job.queue)
  end
end

-- Check the edges: each parent in the flow or known, each policy known, no edge twice.
local children = {}
for j, job in ipairs(jobs) do
  local seen = {}
  for _, p in ipairs(job.parents) do
    if not POLICIES[p.policy] then
      return refuse('job ' .. job.id .. ': policy ' .. tostring(p.policy) ..
        ' is none of cancel, run, wait')
    end
    if not is_name(p.queue) or not is_name(p.id) then
      return refuse('job ' .. job.id .. ': a parent has a bad queue name or id')
    end
    local ref = p.queue .. ' ' .. p.id
    if seen[ref] then return refuse('job ' .. job.id .. ' names parent ' .. ref .. ' twice') end
    seen[ref] = true
    local k = index_of[p.id]
    if k and jobs[k].queue == p.queue then
      if k == j then return refuse('job ' .. job.id .. ' waits for itself') end
      p.index = k
      children[k] = children[k] or {}
      children[k][#children[k] + 1] = j
    else
      p.qp = queue_prefix(ns, p.queue)
      p.state, p.result = job_state(p.qp, p.id)
      if not p.state then
        return refuse('job ' .. job.id .. ': parent ' .. p.id .. ' is not known in queue ' ..
          p.queue)
      end
      if p.state ~= 'live' and p.state ~= 'completed' and p.policy == 'cancel' or
          (p.policy == 'wait' and p.state ~= 'live' and p.state ~= 'completed' and
            p.state ~= 'dead') then
        return refuse('job ' .. job.id .. ': parent ' .. p.id .. ' in queue ' .. p.queue ..
          ' already ended ' .. p.state)
      end
    end
  end
end

-- No cycles: take away jobs with no parents left in the flow until none is left.
local indegree, ready = {}, {}
for j, job in ipairs(jobs) do
  local n = 0
  for _, p in ipairs(job.parents) do if p.index then n = n + 1 end end
  indegree[j] = n
  if n == 0 then ready[#ready + 1] = j end
end
local taken = 0
while #ready > 0 do
  local j = table.remove(ready)
  taken = taken + 1
  for _, c in ipairs(children[j] or {}) do
    indegree[c] = indegree[c] - 1
    if indegree[c] == 0 then ready[#ready + 1] = c end
  end
end
if taken < count then
  for j, job in ipairs(jobs) do
    if indegree[j] > 0 then return refuse('the flow has a cycle through job ' .. job.id) end
  end
end

-- Write: the waiting jobs first, then the ones that run now.
local now = now_ms()
local replies, batches, release = {}, {}, {}
for j, job in ipairs(jobs) do
  local A = job.A
  A[11] = '0'
  if #job.parents == 0 then
    replies[j] = 'created'
  else
    local deps = job.qp .. 'deps:' .. job.id
    local left, blocked = 0, 0
    for _, p in ipairs(job.parents) do
      local pqp = p.qp or jobs[p.index].qp
      local ref = p.queue .. ' ' .. p.id
      local live = p.index or p.state == 'live'
      if p.state == 'completed' then
        redis.call('HSET', deps, 'o:' .. ref, 'completed')
        if p.result and p.result ~= '' then redis.call('HSET', deps, 'r:' .. ref, p.result) end
      elseif not live and p.policy == 'run' then
        redis.call('HSET', deps, 'o:' .. ref, p.state)
      elseif not live then
        -- `wait` for a dead parent: blocked until an operator's retry of it completes.
        redis.call('HSET', deps, 'b:' .. ref, p.state)
        blocked = blocked + 1
        live = true
      end
      if live then
        left = left + 1
        redis.call('RPUSH', pqp .. 'hook:' .. p.id, p.policy .. ' ' .. job.queue .. ' ' .. job.id)
        redis.call('SADD', pqp .. 'hooked', p.id)
      end
    end
    local named = {}
    for _, p in ipairs(job.parents) do
      named[#named + 1] = p.policy .. ' ' .. p.queue .. ' ' .. p.id
    end
    redis.call('HSET', deps, 'left', left, 'edges', #job.parents, 'blocked', blocked,
      'job', cmsgpack.pack(A), 'type', A[2], 'created_at', now,
      'parents', table.concat(named, '\n'))
    if flow_key then redis.call('HSET', deps, 'flow', jobs[1].queue .. ' ' .. flow_id) end
    redis.call('SET', job.qp .. 'id:' .. job.id, 'waiting')
    redis.call('ZADD', job.qp .. 'waiting', now, job.id)
    if left == 0 then
      release[#release + 1] = j
      replies[j] = 'created'
    else
      replies[j] = 'waiting'
    end
  end
end
for j, job in ipairs(jobs) do
  if #job.parents == 0 then
    local batch = batches[job.qp]
    if not batch then
      batch = {}
      batches[job.qp] = batch
    end
    local reply = enqueue_job(job.qp .. 'q', job.qp .. 'job:' .. job.id, job.qp .. 'delayed',
      nil, job.A, 0, batch, nil, job.A[18] or '0', job.A[19] or '')
    if type(reply) == 'string' then return redis.error_reply(reply) end
  end
end
for _, j in ipairs(release) do release_waiting(jobs[j].qp, jobs[j].id, now) end
if flow_key then
  -- The flow's jobs, each `<queue> <id>`, in the order given.
  local members = {}
  for _, job in ipairs(jobs) do
    members[#members + 1] = job.queue .. ' ' .. job.id
    if #members >= 5000 then
      redis.call('RPUSH', flow_key, unpack(members))
      members = {}
    end
  end
  if #members > 0 then redis.call('RPUSH', flow_key, unpack(members)) end
  redis.call('PEXPIRE', flow_key, DEPS_KEPT_MS)
end
return replies
