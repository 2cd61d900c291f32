-- version: 1  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ locationAdd-2: keep each key's recent located events in event-time order; return an event's
neighbours in event time (the one before it and the one after it), whatever order events arrive in.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, 2 keys (one hash tag):
KEYS  1 sorted set: member = event id, score = event time ms (ties ordered by event id)
      2 hash: field "e:<event id>" = "<arrival number>|<location JSON>"; field "n" = arrivals so far
and 6 arguments:
ARGV  1 event id
      2 event time ms
      3 JSON of the located event
      4 trim ms: events before it are forgotten (the horizon) after the item; an event before it
        is neither stored nor compared
      5 TTL ms of both keys, set after the batch
      6 most events kept per key: the oldest beyond it are dropped after the item
Reply { location JSON of the previous event or false, location JSON of the next event or false }
      Neighbours among the events that arrived before this one. A redelivered event (already
      stored) so gets the neighbours it had the first time (unless they were trimmed since), and a
      retry reaches the same decision.
]]
-- Forget events below the trim and the oldest beyond the cap, after each item (not once per call,
-- so a call of many items leaves what one call per item would, and replies the same).
local function keep(set, hash, trim, cap)
  local below = redis.call('ZCOUNT', set, '-inf', '(' .. trim)
  local over = redis.call('ZCARD', set) - tonumber(cap)
  local drop = math.max(below, over)
  if drop <= 0 then return end
  local ids = redis.call('ZRANGE', set, 0, drop - 1)
  for i = 1, #ids do
    redis.call('ZREM', set, ids[i])
    redis.call('HDEL', hash, 'e:' .. ids[i])
  end
end

local function arrivalOf(entry)
  return tonumber(string.match(entry, '^(%d+)|'))
end

local function locationOf(entry)
  return string.match(entry, '^%d+|(.*)$')
end

-- The nearest event from `rank` in direction `step` (-1 or 1) that arrived before `arrival`.
local function neighbour(set, hash, rank, step, arrival, fresh)
  if fresh then
    -- Everything stored arrived before a new event: the adjacent member is its neighbour.
    if rank + step < 0 then return false end
    local ids = redis.call('ZRANGE', set, rank + step, rank + step)
    if #ids == 0 then return false end
    local entry = redis.call('HGET', hash, 'e:' .. ids[1])
    return entry and locationOf(entry) or false
  end
  if step < 0 and rank == 0 then return false end
  local ids = step < 0 and redis.call('ZREVRANGE', set, -rank, -1) or redis.call('ZRANGE', set, rank + 1, -1)
  for i = 1, #ids do
    local entry = redis.call('HGET', hash, 'e:' .. ids[i])
    if entry and arrivalOf(entry) < arrival then return locationOf(entry) end
  end
  return false
end

return runBatch('locationAdd', 2, 6, function(k, a)
  local set, hash = KEYS[k + 1], KEYS[k + 2]
  local id, time, trim = ARGV[a + 1], ARGV[a + 2], ARGV[a + 4]
  expireLater(set, ARGV[a + 5])
  expireLater(hash, ARGV[a + 5])
  if tonumber(time) < tonumber(trim) then
    keep(set, hash, trim, ARGV[a + 6])
    return { false, false }
  end
  local field = 'e:' .. id
  local stored = redis.call('HGET', hash, field)
  local arrival
  local fresh = not stored
  if fresh then
    arrival = redis.call('HINCRBY', hash, 'n', 1)
    redis.call('ZADD', set, time, id)
    redis.call('HSET', hash, field, arrival .. '|' .. ARGV[a + 3])
  else
    arrival = arrivalOf(stored)
  end
  local rank = redis.call('ZRANK', set, id)
  local reply = { false, false }
  if rank then reply = { neighbour(set, hash, rank, -1, arrival, fresh), neighbour(set, hash, rank, 1, arrival, fresh) } end
  keep(set, hash, trim, ARGV[a + 6])
  return reply
end)
