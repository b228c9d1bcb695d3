-- enqueue_many: create a batch of one queue's jobs that hold no unique key, each as the
-- published `enqueue` script would, in one call: each job's outcome or error is its own.
-- The queue's depth and the time are read once for the batch.
-- KEYS[1] stream   KEYS[2] delayed set
-- ARGV[1] the queue's record key prefix (a record key is the prefix and the job id; it
-- shares the declared keys' hash tag, as id keys do)
-- then 15 values per job, from ARGV[2 + 15*(i-1)]: the published script's arguments
-- (job id, type, payload, content type, max attempts, timeout ms, backoff, run at, delay
-- ms, unique ttl (0), queue length cap, queue name, trace context, protocol version, '').
-- Returns one reply per job: "created", "exists", or the error the published script
-- would answer (QUEUE_FULL …, BAD_ID …, BAD_ARG …).
local replies, batch = {}, {}
for o = 1, #ARGV - 1, 15 do
  local reply = enqueue_job(KEYS[1], ARGV[1] .. ARGV[o + 1], KEYS[2], nil, ARGV, o, batch)
  if type(reply) == 'string' then
    replies[#replies + 1] = reply
  else
    replies[#replies + 1] = reply[2]
  end
end
return replies
