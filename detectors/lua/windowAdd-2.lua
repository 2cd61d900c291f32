--[[ windowAdd-2: add one event to a sliding event-time window and read the window back.
KEYS[1]  sorted set of the window: member = event id (a redelivery adds nothing), score = event time ms
KEYS[2]  hash: time and id of the last detection for this key (read only; see claimFiring-1)
ARGV[1]  event id
ARGV[2]  event time ms
ARGV[3]  window start ms (inclusive)
ARGV[4]  window end ms (inclusive; the engine passes the event's time plus a window, so a late
         event can complete a window that ends after it)
ARGV[5]  trim: members scored below this are dropped (older than any window still open)
ARGV[6]  TTL ms of KEYS[1]
ARGV[7]  most members to return
Returns  { count in [start, end], "<time>|<id>" of the last detection or false, member1, score1, ... }
         members oldest first, at most ARGV[7] of them
]]
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
local count = redis.call('ZCOUNT', KEYS[1], ARGV[3], ARGV[4])
local members = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[3], ARGV[4], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[7]))
local fired = redis.call('HGET', KEYS[2], 'time')
if fired then fired = fired .. '|' .. (redis.call('HGET', KEYS[2], 'id') or '') end
local result = { count, fired }
for i = 1, #members do result[#result + 1] = members[i] end
return result
