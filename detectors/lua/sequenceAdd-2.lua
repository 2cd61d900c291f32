--[[ sequenceAdd-2: record the steps one event matched and read the key's steps in the window.
KEYS[1]  sorted set: member = "<step index>:<event id>", score = event time ms
KEYS[2]  hash: time and id of the last detection for this key (read only; see claimFiring-1)
ARGV[1]  event time ms
ARGV[2]  window start ms (inclusive)
ARGV[3]  window end ms (inclusive)
ARGV[4]  trim: members scored below this are dropped
ARGV[5]  TTL ms of KEYS[1]
ARGV[6]  most members to return
ARGV[7..] members to add ("<step>:<event id>")
Returns  { "<time>|<id>" of the last detection or false, member1, score1, ... } newest first, at most ARGV[6]
         (a long history of one step must not push the latest steps out of the reply)
]]
for i = 7, #ARGV do redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local members = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[3], ARGV[2], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[6]))
local fired = redis.call('HGET', KEYS[2], 'time')
if fired then fired = fired .. '|' .. (redis.call('HGET', KEYS[2], 'id') or '') end
local result = { fired }
for i = 1, #members do result[#result + 1] = members[i] end
return result
