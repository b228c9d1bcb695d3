-- leader_release: give the scheduler lease up at once (shutdown), if it is still ours.
-- KEYS[1] leader lease
-- ARGV[1] holder id
-- Returns 1 if released, 0 if it was not ours.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
