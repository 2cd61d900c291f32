-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ alertSettle-5: resolve a group's open alert once its quiet period has passed: in event time
(the newest order time folded is past the quiet period after its last detection, taken at its
latest order time `lo` when it has one: a surge detection folds at its judgedAt; version 2), or, when no
detection arrives at all, by the wall clock (no change for the quiet period plus the allowed
lateness). Either way it is resolved at its event-time end, last + quiet, so the record is the
same however it was noticed.
KEYS[1]  hash: the group's alert (see alertFold-11)
KEYS[2]  sorted set of open alerts by event time
KEYS[3]  hash of unsent changes (see alertFold-11): the resolve is recorded there too
KEYS[4]  hash, the event-time clock (see alertHold-2)
KEYS[5]  sorted set of open alerts by wall-clock time
ARGV[1]  wall-clock now ms
ARGV[2]  quiet period ms
ARGV[3]  allowed lateness ms
ARGV[4]  group key (member of KEYS[2] and KEYS[5])
ARGV[5]  TTL ms of KEYS[1] once resolved (kept a while so a redelivered detection is a duplicate)
ARGV[6]  reason of the resolved change
Returns  { JSON of the resolved alert's fields, event | wall }, or false when it is not open or not
         quiet (another instance resolved it, or a detection arrived meanwhile)
]]
if redis.call('HGET', KEYS[1], 'status') ~= 'open' then
  redis.call('ZREM', KEYS[2], ARGV[4])
  redis.call('ZREM', KEYS[5], ARGV[4])
  return false
end
local quiet = tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local lo = tonumber(redis.call('HGET', KEYS[1], 'lo') or '0')
local seen = tonumber(redis.call('HGET', KEYS[1], 'seen') or '0')
local folded = tonumber(redis.call('HGET', KEYS[4], 'folded') or '')
local how
if folded ~= nil and folded > math.max(last, lo) + quiet then how = 'event'
elseif tonumber(ARGV[1]) - seen >= quiet + tonumber(ARGV[3]) then how = 'wall'
else return false end
redis.call('HSET', KEYS[1], 'status', 'resolved', 'resolved', string.format('%.0f', last + quiet))
redis.call('HINCRBY', KEYS[1], 'revision', 1)
redis.call('ZREM', KEYS[2], ARGV[4])
redis.call('ZREM', KEYS[5], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
local fields = cjson.encode(redis.call('HGETALL', KEYS[1]))
local id = redis.call('HGET', KEYS[1], 'id') .. ':' .. redis.call('HGET', KEYS[1], 'revision') .. ':resolved'
redis.call('HSET', KEYS[3], id, cjson.encode({ kind = 'resolved', fields = fields, reason = ARGV[6], at = tonumber(ARGV[1]) }))
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return { fields, how }
