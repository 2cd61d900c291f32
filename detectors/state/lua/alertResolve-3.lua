-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ alertResolve-3: resolve a group's alert if it has been quiet long enough.
KEYS[1]  hash: the group's alert (see alertUpsert-3)
KEYS[2]  sorted set of open alerts
KEYS[3]  hash of unsent changes (see alertUpsert-3): the resolve is recorded there too, so a
         crash before the notification outbox has it does not lose it
ARGV[1]  now ms
ARGV[2]  quiet period ms
ARGV[3]  group key (member of KEYS[2])
ARGV[4]  TTL ms of KEYS[1] once resolved (kept a while so a late detection opens a new alert)
ARGV[5]  reason of the resolved change
Returns  JSON of the resolved alert's fields, or false when it is not open or not quiet (another
         alerter instance resolved it, or a detection arrived meanwhile)
]]
if redis.call('HGET', KEYS[1], 'status') ~= 'open' then
  redis.call('ZREM', KEYS[2], ARGV[3])
  return false
end
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
if tonumber(ARGV[1]) - last < tonumber(ARGV[2]) then return false end
redis.call('HSET', KEYS[1], 'status', 'resolved', 'resolved', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'revision', 1)
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local fields = cjson.encode(redis.call('HGETALL', KEYS[1]))
local id = redis.call('HGET', KEYS[1], 'id') .. ':' .. redis.call('HGET', KEYS[1], 'revision') .. ':resolved'
redis.call('HSET', KEYS[3], id, cjson.encode({ kind = 'resolved', fields = fields, reason = ARGV[5], at = tonumber(ARGV[1]) }))
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return fields
