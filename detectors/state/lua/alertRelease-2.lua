-- version: 1  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ alertRelease-2: the held detections the watermark has passed, oldest order time first (ties
by JSON, which opens with the detection's id): the order alertFold-11 folds them in, and moves
the fold clock (`folded`) to the watermark. It does not remove them: the alerter removes them once
folded, so a crash in between folds them again (as duplicates).
The watermark is the oldest of the newest event times held from each active source partition,
minus the allowed lateness: a partition reading a backlog holds the others back, so their
detections wait for its. A partition with no arrival for the idle time (wall clock) holds
nothing back; with none active, the newest event time held sets the watermark. When no detection
arrived at all for the allowed lateness, everything held is released: the wall-clock fallback.
KEYS[1]  sorted set of held detections (see alertHold-2)
KEYS[2]  hash, the event-time clock (see alertHold-2)
ARGV[1]  wall-clock now ms
ARGV[2]  allowed lateness ms
ARGV[3]  most detections returned
ARGV[4]  idle time ms: a partition without an arrival for this long is idle
Returns  { watermark ms as text (false when nothing was ever held), 1 when the wall-clock fallback
           released everything, else 0, member, score, member, score, ... }
]]
local now = tonumber(ARGV[1])
local lateness = tonumber(ARGV[2])
local clock = redis.call('HGETALL', KEYS[2])
local fields = {}
for i = 1, #clock, 2 do fields[clock[i]] = clock[i + 1] end
if fields['max'] == nil then return { false, 0 } end
local oldest = nil
for field, value in pairs(fields) do
  if string.sub(field, 1, 4) == 'max:' then
    local arrived = tonumber(fields['arrived:' .. string.sub(field, 5)] or '0')
    local newest = tonumber(value)
    if now - arrived < tonumber(ARGV[4]) and (oldest == nil or newest < oldest) then oldest = newest end
  end
end
local fallback = now - tonumber(fields['arrived'] or '0') >= lateness
local watermark = (oldest or tonumber(fields['max'])) - lateness
local bound = fallback and '+inf' or string.format('%.0f', watermark)
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', bound, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]))
-- Everything up to the watermark is released: the fold clock moves to it (the sweeper resolves
-- by it), even when nothing was held there. (The fallback's bound is no event time: the fold
-- clock moves with what it folds.)
local folded = tonumber(fields['folded'] or '')
if not fallback and (folded == nil or watermark > folded) then
  redis.call('HSET', KEYS[2], 'folded', string.format('%.0f', watermark))
end
local reply = { string.format('%.0f', watermark), fallback and 1 or 0 }
for i = 1, #members do reply[#reply + 1] = members[i] end
return reply
