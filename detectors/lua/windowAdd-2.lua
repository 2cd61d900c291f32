--[[ windowAdd-2: add one event to a sliding event-time window and read the window back.
KEYS[1]  sorted set of the window: member = event id (a redelivery adds nothing), score = event time ms
KEYS[2]  string: event time ms of the last detection for this key (read only)
ARGV[1]  event id
ARGV[2]  event time ms
ARGV[3]  window start ms (inclusive)
ARGV[4]  window end ms (inclusive; the event's own time)
ARGV[5]  trim: members scored below this are dropped (older than any window still open)
ARGV[6]  TTL ms of KEYS[1]
ARGV[7]  most members to return
Returns  { count in [start, end], last detection time or false, member1, score1, member2, score2, ... }
         members oldest first, at most ARGV[7] of them
]]
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
local count = redis.call('ZCOUNT', KEYS[1], ARGV[3], ARGV[4])
local members = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[3], ARGV[4], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[7]))
local result = { count, redis.call('GET', KEYS[2]) }
for i = 1, #members do result[#result + 1] = members[i] end
return result
