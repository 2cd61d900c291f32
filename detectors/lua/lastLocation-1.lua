--[[ lastLocation-1: swap in the newest located event of a key; return the one before it.
KEYS[1]  hash: time = event time ms, id = event id, location = JSON of the newest located event,
         before = JSON of the one it replaced
ARGV[1]  event time ms
ARGV[2]  JSON of this located event
ARGV[3]  TTL ms of KEYS[1]
ARGV[4]  event id
Returns  the location JSON to compare this event with, or false. An event older than the stored
         one is compared with it but does not replace it (events may arrive out of order). A
         redelivered event (same id as the newest) gets the location before it, as it did the
         first time, so a retry reaches the same decision.
]]
if redis.call('HGET', KEYS[1], 'id') == ARGV[4] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return redis.call('HGET', KEYS[1], 'before')
end
local previousTime = redis.call('HGET', KEYS[1], 'time')
local previous = redis.call('HGET', KEYS[1], 'location')
if not previousTime or tonumber(ARGV[1]) >= tonumber(previousTime) then
  if previous then
    redis.call('HSET', KEYS[1], 'time', ARGV[1], 'id', ARGV[4], 'location', ARGV[2], 'before', previous)
  else
    redis.call('HSET', KEYS[1], 'time', ARGV[1], 'id', ARGV[4], 'location', ARGV[2])
    redis.call('HDEL', KEYS[1], 'before')
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return previous
