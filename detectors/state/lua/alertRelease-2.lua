-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ alertRelease-2: the held detections the watermark has passed, oldest order time first (ties
by JSON, which opens with the detection's id): the order alertFold-12 folds them in, and moves
the fold clock (`folded`) to the watermark. It does not remove them: the alerter removes them once
folded, so a crash in between folds them again (as duplicates).
The watermark is the oldest of the newest event times held from each active source partition,
minus the allowed lateness: a partition reading a backlog holds the others back, so their
detections wait for its. A partition is active while it has more to read (its last batch ended
before its high watermark: behind:<partition> is 1), for the backlog time at most since its last
batch (a partition whose consumer is gone no longer holds the others back once the group moved
it); once caught up, for the idle time after its last batch. With none active, the newest event
time held sets the watermark. When no detection arrived at all for the allowed lateness,
everything held is released: the wall-clock fallback. Version 2 adds the backlog rule.
KEYS[1]  sorted set of held detections (see alertHold-2)
KEYS[2]  hash, the event-time clock (see alertHold-2)
ARGV[1]  wall-clock now ms
ARGV[2]  allowed lateness ms
ARGV[3]  most detections returned
ARGV[4]  idle time ms: a caught-up partition without an arrival for this long is idle
ARGV[5]  backlog time ms: a partition with more to read and no arrival for this long is idle
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
    local partition = string.sub(field, 5)
    local arrived = tonumber(fields['arrived:' .. partition] or '0')
    local idle = fields['behind:' .. partition] == '1' and tonumber(ARGV[5]) or tonumber(ARGV[4])
    local newest = tonumber(value)
    if now - arrived < idle and (oldest == nil or newest < oldest) then oldest = newest end
  end
end
-- The fallback is for no detection at all: not while a partition still has a backlog to read.
local fallback = now - tonumber(fields['arrived'] or '0') >= lateness
if fallback and oldest ~= nil then
  for field, value in pairs(fields) do
    if string.sub(field, 1, 7) == 'behind:' and value == '1' then
      local arrived = tonumber(fields['arrived:' .. string.sub(field, 8)] or '0')
      if now - arrived < tonumber(ARGV[5]) then fallback = false end
    end
  end
end
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
