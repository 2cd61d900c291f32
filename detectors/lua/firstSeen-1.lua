--[[ firstSeen-1: note that a key was seen with a value; say whether the value was known.
KEYS[1]  sorted set of known values: member = value, score = latest event time ms it was seen at
ARGV[1]  value
ARGV[2]  event time ms
ARGV[3]  trim: values last seen below this are forgotten (the history horizon)
ARGV[4]  TTL ms of KEYS[1] (the horizon)
Returns  { time ms the value was last seen or false, number of other values known }
         A redelivered event (the value last seen at exactly this time) is answered as the first
         time: "known" then counts only values seen before it.
]]
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
local previous = redis.call('ZSCORE', KEYS[1], ARGV[1])
local known
if previous and tonumber(previous) == tonumber(ARGV[2]) then
  known = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[2])
else
  known = redis.call('ZCARD', KEYS[1])
  if previous then known = known - 1 end
end
redis.call('ZADD', KEYS[1], 'GT', ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return { previous, known }
