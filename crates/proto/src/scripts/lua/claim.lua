-- claim: take the delivered entries of one queue that carry a whole job with an id of its
-- own (or the id of a retried job without one), a batch per call, before they run. The first entry to claim an id runs it; any
-- other entry carrying the same id is a duplicate, acknowledged and removed unrun.
-- KEYS[1] stream
-- ARGV[1] group   ARGV[2] consumer
-- ARGV[3] the queue's record key prefix (an id key shares its hash tag)
-- ARGV[4], ARGV[5] the lowest and highest of the entry ids
-- ARGV[6] the idle time, in ms, from which a claimed entry's idle time is reset (0: all)
-- then 3 values per entry, from ARGV[7 + 3*(i-1)]: entry id, job id, delivery count
-- Returns one word per entry, separated by spaces: "ok" (run it: the entry is this
-- worker's at that delivery count and holds the id), "lost" (no longer this worker's: not
-- run), "duplicate" (another entry holds the id, or held it until its job finished:
-- removed) or "record" (the id has a record, which leads: start it through `start`).
local stream, group, consumer = KEYS[1], ARGV[1], ARGV[2]
local records = ARGV[3]
local ids = id_prefix_of(records)
local done_ids = done_ids_of(records)
local refresh_idle = tonumber(ARGV[6])
-- The batch's entries still pending under this consumer, in one read: delivery count
-- and idle time of each.
local owned, idle = owned_in(stream, group, consumer, ARGV[4], ARGV[5], (#ARGV - 6) / 3)
local words, stale, dropped = {}, {}, {}

for a = 7, #ARGV, 3 do
  local entry, job_id, delivery = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
  local word
  if owned[entry] ~= delivery then
    word = 'lost'
  else
    local held = redis.call('GET', ids .. job_id)
    if held == entry then
      -- A record appears beside a claimed entry only when an earlier attempt reported
      -- progress and its worker stopped; only then is it looked for.
      if delivery > 1 and redis.call('EXISTS', records .. job_id) == 1 then
        word = 'record'
      else
        word = 'ok'
      end
    elseif names_entry(job_id) then
      -- The id of a job without one of its own, which its id key names only from its
      -- first retry without a record on (protocol 2.7): a copy that no key names is one
      -- whose record leads (put back by reconciliation, say). A full id given as an own
      -- id goes the same way, and the start refuses it.
      word = 'record'
    elseif held then
      -- Another entry holds the id, unless this one is a copy its record points at (put
      -- back by an older worker, say): then the record decides.
      if redis.call('HGET', records .. job_id, 'entry') == entry then
        word = 'record'
      else
        word = 'duplicate'
      end
    elseif redis.call('EXISTS', records .. job_id) == 1 then
      -- Enqueued with a record (delayed, unique, or by an older producer), or started by
      -- an older worker: the record path decides.
      word = 'record'
    elseif redis.call('ZSCORE', done_ids, job_id) then
      -- Its job completed without a record, and is remembered.
      word = 'duplicate'
    else
      -- Added by a raw XADD: this first start claims the id, for as long as the job lives
      -- (its completion moves the id to `done_ids`).
      redis.call('SET', ids .. job_id, entry)
      word = 'ok'
    end
  end
  if word == 'ok' and idle[entry] >= refresh_idle then
    stale[#stale + 1] = entry
  elseif word == 'duplicate' then
    dropped[#dropped + 1] = entry
  end
  words[#words + 1] = word
end

ack_and_delete_all(stream, group, dropped)
-- An entry read a while ago (its worker stalled between the read and this call) has its
-- idle time reset, so that no reclaimer takes it before this worker's first heartbeat
-- (rule 4). A fresh read needs none: the reset costs more than the rest of the claim.
reset_idle(stream, group, consumer, stale)
return table.concat(words, ' ')
