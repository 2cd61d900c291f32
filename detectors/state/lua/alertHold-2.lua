-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ alertHold-2: hold a batch's detections until the alerter's watermark passes them, and move
the alerter's event-time clock. A held detection is folded into alerts by alertFold-12, in the
order of its order time (then of its JSON, which opens with its id), once the watermark (see
alertRelease-2) passes it. Holding the same detection twice (a redelivery) keeps one member: the
JSON is the same. Version 2 records whether the source partition still has a backlog to read.
KEYS[1]  sorted set of held detections: member = the detection's JSON, score = its order time ms
KEYS[2]  hash, the event-time clock: max (newest event time held, ms), folded (newest order time
         folded, ms; see alertRelease-2), arrived (wall-clock ms of the last arrival), and per
         source partition max:<partition> (its newest event time held), arrived:<partition> (the
         wall-clock ms of its last batch) and behind:<partition> (1 while it has more to read)
ARGV[1]  wall-clock now ms
ARGV[2]  TTL ms of both keys
ARGV[3]  the source partition of the batch (`<topic>:<partition>`)
ARGV[4]  1 when the batch ended before the partition's high watermark (a backlog), else 0
ARGV[5.] triples: order time ms, event time ms, the detection's JSON
Returns  { newest event time held (ms, as text), how many of the batch arrived late: their order
           time is not past the newest order time already folded, so they fold out of order }
]]
local max = tonumber(redis.call('HGET', KEYS[2], 'max') or '')
local mine = tonumber(redis.call('HGET', KEYS[2], 'max:' .. ARGV[3]) or '')
local folded = tonumber(redis.call('HGET', KEYS[2], 'folded') or '')
local late = 0
for i = 5, #ARGV, 3 do
  local order = tonumber(ARGV[i])
  local time = tonumber(ARGV[i + 1])
  if folded ~= nil and order <= folded then late = late + 1 end
  redis.call('ZADD', KEYS[1], order, ARGV[i + 2])
  if max == nil or time > max then max = time end
  if mine == nil or time > mine then mine = time end
end
if max ~= nil then redis.call('HSET', KEYS[2], 'max', string.format('%.0f', max)) end
if mine ~= nil then redis.call('HSET', KEYS[2], 'max:' .. ARGV[3], string.format('%.0f', mine)) end
redis.call('HSET', KEYS[2], 'arrived', ARGV[1], 'arrived:' .. ARGV[3], ARGV[1], 'behind:' .. ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return { max ~= nil and string.format('%.0f', max) or false, late }
