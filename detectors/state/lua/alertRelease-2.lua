-- version: 1  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ alertRelease-2: the held detections the watermark has passed, oldest order time first (ties
by JSON, which opens with the detection's id): the order alertFold-11 folds them in. It does not
remove them: the alerter removes them once folded, so a crash in between folds them again (as
duplicates).
KEYS[1]  sorted set of held detections (see alertHold-2)
KEYS[2]  hash, the event-time clock (see alertHold-2)
ARGV[1]  wall-clock now ms
ARGV[2]  allowed lateness ms: the watermark is the newest event time held minus this
ARGV[3]  most detections returned
Returns  { watermark ms as text (false when nothing was ever held), 1 when the wall-clock fallback
           released everything (no detection arrived for the allowed lateness) else 0,
           member, score, member, score, ... }
]]
local max = tonumber(redis.call('HGET', KEYS[2], 'max') or '')
if max == nil then return { false, 0 } end
local lateness = tonumber(ARGV[2])
local watermark = max - lateness
local arrived = tonumber(redis.call('HGET', KEYS[2], 'arrived') or '0')
local fallback = tonumber(ARGV[1]) - arrived >= lateness
local bound = fallback and '+inf' or string.format('%.0f', watermark)
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', bound, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
local reply = { string.format('%.0f', watermark), fallback and 1 or 0 }
for i = 1, #members do reply[#reply + 1] = members[i] end
return reply
