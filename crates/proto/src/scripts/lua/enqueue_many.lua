-- enqueue_many: create a batch of one queue's jobs that hold no unique key, each as the
-- published `enqueue` script would, in one call: each job's outcome or error is its own.
-- The queue's depth and the time are read once for the batch, and so is what the batch's
-- ids are known as (one MGET of their id keys, one EXISTS of their records, one ZMSCORE
-- of `done_ids`); their id keys are written with one MSET and the waiting ones join
-- `later` with one ZADD. A job then costs its entry's XADD and little more, where one
-- call per job for each of these cost several microseconds of Redis time per job.
-- KEYS[1] stream   KEYS[2] delayed set
-- ARGV[1] the queue's record key prefix (a record key is the prefix and the job id; it
-- shares the declared keys' hash tag, as id keys do)
-- then 17 values per job, from ARGV[2 + 17*(i-1)]: the published script's first 15
-- arguments (job id, type, payload, content type, max attempts, timeout ms, backoff, run
-- at, delay ms, unique ttl (0), queue length cap, queue name, trace context, protocol
-- version, ''), then when it expires (its ARGV[18]: ms since the epoch, 0 for never) and
-- its group (its ARGV[19]: '' for none).
-- Returns one reply per job: "created", "exists", or the error the published script
-- would answer (QUEUE_FULL …, BAD_ID …, BAD_ARG …).
local stream, records = KEYS[1], ARGV[1]
local ids_prefix = id_prefix_of(records)
local replies = {}
-- The queue's group limits, read once for the call (see `group_limits`).
local limits_cache = {}

-- The jobs the checks of their arguments let through: their argument offsets, ids, id
-- keys and record keys, and their places among the replies.
local offsets, ids, id_keys, record_keys, places = {}, {}, {}, {}, {}
for o = 1, #ARGV - 1, 17 do
  local refusal = enqueue_refusal(ARGV, o, ARGV[o + 16], ARGV[o + 17])
  replies[#replies + 1] = refusal or false
  if not refusal then
    local id = ARGV[o + 1]
    offsets[#offsets + 1] = o
    ids[#ids + 1] = id
    id_keys[#id_keys + 1] = ids_prefix .. id
    record_keys[#record_keys + 1] = records .. id
    places[#places + 1] = #replies
  end
end
if #ids == 0 then return replies end

-- Known ids: a live job's id key, a record (a unique, retried or older job), or a
-- completion still remembered in `done_ids`. Records are rare on this path: one EXISTS
-- over all of them says whether to look at each.
local held = call_spread('MGET', nil, id_keys)
local completed = call_spread('ZMSCORE', done_ids_of(records), ids)
local _, with_record = call_spread('EXISTS', nil, record_keys)
local function known(i)
  if held[i] or completed[i] then return true end
  return with_record > 0 and redis.call('EXISTS', record_keys[i]) == 1
end

local later = later_of(KEYS[2])
local now, now_text, depth = nil, nil, nil
-- Ids created by this call (a second job with one of them is told it exists), the id keys
-- to write as key/value pairs, and `later`'s new members as score/member pairs.
local created, writes, waiting = {}, {}, {}
local due_text_of = {}
for i, o in ipairs(offsets) do
  local id = ids[i]
  local place = places[i]
  if created[id] or known(i) then
    replies[place] = 'exists'
  else
    local cap = tonumber(ARGV[o + 11])
    if cap > 0 and not depth then
      depth = redis.call('XLEN', stream) + redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', later)
        + grouped_count(stream)
    end
    if cap > 0 and depth >= cap then
      replies[place] = 'QUEUE_FULL queue ' .. ARGV[o + 12] .. ' holds ' .. depth ..
        ' jobs, its limit is ' .. cap
    else
      if depth then depth = depth + 1 end
      if not now then
        now = now_ms()
        now_text = tostring(now)
      end
      local due = tonumber(ARGV[o + 8])
      local delay = tonumber(ARGV[o + 9])
      if due == 0 and delay > 0 then due = now + delay end
      local group = ARGV[o + 17]
      local fields = entry_fields_of(ARGV, o, ARGV[o + 16], group)
      local qp = group ~= '' and due <= now and queue_prefix_of(job_prefix_of(record_keys[i], id))
      if qp and wait_group_turn(qp, id, id_keys[i], group, fields, now,
          group_limits(limits_cache, qp)) then
        -- Waits its group's turn (its id key written there); one with a time takes its
        -- turn when its time comes (promote).
      elseif due > now then
        -- Waits in `later`, its id key holding the entry it becomes once due. Jobs of one
        -- call mostly share their due time: each is printed once.
        local due_text = due_text_of[due]
        if not due_text then
          due_text = tostring(due)
          due_text_of[due] = due_text
        end
        fields[#fields + 1] = 'run_at'
        fields[#fields + 1] = due_text
        fields[#fields + 1] = 'created_at'
        fields[#fields + 1] = now_text
        waiting[#waiting + 1] = due_text
        waiting[#waiting + 1] = id
        writes[#writes + 1] = id_keys[i]
        writes[#writes + 1] = pack_waiting('scheduled', fields)
      else
        -- `held`: the id key names this entry from the start, so a worker need not claim it.
        fields[#fields + 1] = 'held'
        fields[#fields + 1] = '1'
        local entry = redis.call('XADD', stream, '*', unpack(fields))
        if group ~= '' then
          -- Let through: its id key is written now, as its group's next job of this call
          -- judges whether it still lives by it.
          redis.call('SET', id_keys[i], entry)
        else
          writes[#writes + 1] = id_keys[i]
          writes[#writes + 1] = entry
        end
      end
      created[id] = true
      replies[place] = 'created'
    end
  end
end
if #waiting > 0 then call_spread('ZADD', later, waiting) end
if #writes > 0 then call_spread('MSET', nil, writes) end
return replies
