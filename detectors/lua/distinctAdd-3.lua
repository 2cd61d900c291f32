--[[ distinctAdd-3: add one value of a field to a sliding window of distinct values and read it back.
KEYS[1]  sorted set of values: member = value, score = latest event time ms it was seen at
KEYS[2]  sorted set of event ids: member = event id, score = event time ms (evidence)
KEYS[3]  hash: time and id of the last detection for this key (read only; see claimFiring-1)
ARGV[1]  value
ARGV[2]  event id
ARGV[3]  event time ms
ARGV[4]  window start ms (inclusive)
ARGV[5]  window end ms (inclusive)
ARGV[6]  trim: members scored below this are dropped
ARGV[7]  TTL ms of KEYS[1] and KEYS[2]
ARGV[8]  most values / ids to return
Returns  { distinct values whose latest time is in [start, end], "<time>|<id>" of the last detection or false, number of values n,
           value1..value_n, id1..id_m } (values and ids oldest first, each at most ARGV[8])
]]
redis.call('ZADD', KEYS[1], 'GT', ARGV[3], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('PEXPIRE', KEYS[2], ARGV[7])
-- Up to the event's own time only: a late event must not count values seen after it.
local count = redis.call('ZCOUNT', KEYS[1], ARGV[4], ARGV[5])
local values = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[4], ARGV[5], 'LIMIT', 0, tonumber(ARGV[8]))
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[4], ARGV[5], 'LIMIT', 0, tonumber(ARGV[8]))
local fired = redis.call('HGET', KEYS[3], 'time')
if fired then fired = fired .. '|' .. (redis.call('HGET', KEYS[3], 'id') or '') end
local result = { count, fired, #values }
for i = 1, #values do result[#result + 1] = values[i] end
for i = 1, #ids do result[#result + 1] = ids[i] end
return result
