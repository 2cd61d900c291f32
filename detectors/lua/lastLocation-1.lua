--[[ lastLocation-1: swap in the newest located event of a key; return the one before.
KEYS[1]  hash: time = event time ms, location = JSON of the located event
ARGV[1]  event time ms
ARGV[2]  JSON of this located event
ARGV[3]  TTL ms of KEYS[1]
Returns  the previous location JSON, or false. An event older than the stored one is compared
         with it but does not replace it (events may arrive out of order).
]]
local previousTime = redis.call('HGET', KEYS[1], 'time')
local previous = redis.call('HGET', KEYS[1], 'location')
if not previousTime or tonumber(ARGV[1]) >= tonumber(previousTime) then
  redis.call('HSET', KEYS[1], 'time', ARGV[1], 'location', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return previous
