-- repair_deps: look at one job waiting for its parents, or at one batch, for an end no
-- script told it (protocol 2.19), and with `repair` tell it now. Every script that ends
-- a job tells its children in the same call, so this finds only what a loss of data left
-- (a parent's record gone before a retry could complete it, an edge lost with a write
-- Redis did not persist), and what a mistake elsewhere would leave.
-- KEYS[1] the queue's stream (where a cluster client sends the call)
-- ARGV[1] the namespace   ARGV[2] the queue   ARGV[3] `job` or `batch`   ARGV[4] its id
-- ARGV[5] `repair` to repair what it finds, else only look
-- ARGV[6] how long the records of jobs a repair cancels are kept, ms
-- Returns one text per finding:
--   `untold <queue> <id> <how it ended>`: a parent (or a batch's dead job) ended and the
--   job (or batch) was not told; `gone <queue> <id>`: a parent (or a batch's dead job) is
--   known no more, and is told as deleted; `unhooked <queue> <id>`: a parent that has not
--   ended has lost its edge to the job, which is written again; `undecided <kind>`: a
--   finished batch's callback neither fired nor was cancelled.
local ns, queue, kind, id, repair = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5] == 'repair'
local retention = tonumber(ARGV[6]) or 86400000
local qp = queue_prefix(ns, queue)
local now = now_ms()
local found = {}

-- Tells the children of the jobs a repair cancelled, as their ends would have.
local function tell_cancelled(todo)
  for _, t in ipairs(todo) do settle_dependents(t[1], t[2], t[3], t[4], now, retention) end
end

if kind == 'job' then
  local deps = qp .. 'deps:' .. id
  if redis.call('HEXISTS', deps, 'left') == 0 then return found end
  local parents = redis.call('HGET', deps, 'parents') or ''
  for line in string.gmatch(parents, '[^\n]+') do
    local policy, pq, pid = string.match(line, '^(%S+) (%S+) (%S+)$')
    local ref = policy and pq .. ' ' .. pid
    if ref and redis.call('HEXISTS', deps, 'o:' .. ref) == 0 and
        redis.call('HEXISTS', deps, 'left') == 1 then
      local pqp = queue_prefix(ns, pq)
      local state, result = job_state(pqp, pid)
      local blocked = redis.call('HEXISTS', deps, 'b:' .. ref) == 1
      local edge = policy .. ' ' .. queue .. ' ' .. id
      local hooked = redis.call('LPOS', pqp .. 'hook:' .. pid, edge)
      if not state then
        found[#found + 1] = 'gone ' .. ref
        if repair then
          local todo = {}
          tell_child(qp, id, policy, ref, 'deleted', nil, now, retention, todo)
          tell_cancelled(todo)
        end
      elseif state == 'live' then
        if not hooked then
          found[#found + 1] = 'unhooked ' .. ref
          if repair then
            redis.call('RPUSH', pqp .. 'hook:' .. pid, edge)
            redis.call('SADD', pqp .. 'hooked', pid)
          end
        end
      elseif not (blocked and state == 'dead') then
        found[#found + 1] = 'untold ' .. ref .. ' ' .. state
        if repair then
          if hooked then
            -- The parent's end never told any of its children: tell them all.
            redis.call('SADD', pqp .. 'hooked', pid)
            settle_dependents(pqp, pid, state, result, now, retention)
          else
            local todo = {}
            tell_child(qp, id, policy, ref, state, result, now, retention, todo)
            tell_cancelled(todo)
          end
        end
      end
    end
  end
  return found
end

if kind ~= 'batch' then return redis.error_reply('BAD_ARG kind ' .. tostring(kind)) end
local key = qp .. 'batch:' .. id
if redis.call('EXISTS', key) == 0 then return found end
-- Its dead jobs: one whose data is gone can never complete; one that completed after a
-- retry without being counted is counted.
for _, name in ipairs(redis.call('HKEYS', key)) do
  local ref = string.match(name, '^m:(.+)$')
  local mq, mid
  if ref then mq, mid = string.match(ref, '^(%S+) (%S+)$') end
  if mq then
    local state = job_state(queue_prefix(ns, mq), mid)
    if not state then
      found[#found + 1] = 'gone ' .. ref
      if repair then batch_told(qp, id, ref, 'deleted', now, retention) end
    elseif state ~= 'live' and state ~= 'dead' then
      found[#found + 1] = 'untold ' .. ref .. ' ' .. state
      if repair then batch_told(qp, id, ref, state, now, retention) end
    end
  end
end
local f = redis.call('HMGET', key, 'sealed', 'pending', 'dead', 'ended', 'completed', 'total')
if f[1] == '1' and tonumber(f[2]) == 0 then
  local undecided = {}
  for _, cb in ipairs({'complete', 'success', 'death'}) do
    local named = redis.call('HEXISTS', key, 'cb:' .. cb) == 1
    local decided = redis.call('HEXISTS', key, 'done:' .. cb) == 1
    -- `success` waits while a dead job may still complete; `death` fires at a death.
    local due = cb == 'complete' or (cb == 'success' and (tonumber(f[5]) >= tonumber(f[6])
      or tonumber(f[4]) > 0)) or (cb == 'death' and tonumber(f[3]) + tonumber(f[4]) == 0)
    if named and not decided and due then undecided[#undecided + 1] = cb end
  end
  for _, cb in ipairs(undecided) do found[#found + 1] = 'undecided ' .. cb end
  if repair and #undecided > 0 then batch_settled(key, now, retention) end
end
return found
