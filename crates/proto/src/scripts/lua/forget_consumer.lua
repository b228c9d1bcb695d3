-- forget_consumer: delete a consumer from the group, but only if it owns no entries
-- (deleting one that does would drop its pending entries and strand those jobs).
-- KEYS[1] stream
-- ARGV[1] group   ARGV[2] consumer
-- Returns 1 if deleted, 0 if it still owns entries.
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
