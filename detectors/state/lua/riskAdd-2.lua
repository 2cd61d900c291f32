-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ riskAdd-2: add detections to entities' risk scores, which decay exponentially by event time,
and say when a score crosses its threshold. A batch script (lib/batch.lua): one call carries any
number of items, run in order; one reply per item. A detection already counted for an entity
(a redelivered batch) adds nothing; if it was the detection that made the entity cross, the
crossing is said again, with the score and contributors of that moment, so a batch redone after a
later failure raises the same risk detection (version 2; version 1 said it once only). An entity
crosses once: it can cross again only after its score has decayed below the threshold.
Per item, 2 keys (one hash tag: the entity):
KEYS  1 hash: score = the score at `at`, at = event time ms of the last update, above = 1 while at or over the threshold,
        crossedBy = the detection id that made it cross last, crossing = that reply's score, at and contributors (cjson)
      2 hash of contributors: detection id -> "<event time ms>|<points>|<rule id>"
and 8 arguments:
ARGV  1 detection id
      2 event time ms of the detection (a time before `at` adds its points decayed to `at`)
      3 points it adds
      4 rule id
      5 half-life ms
      6 threshold
      7 TTL ms of both keys, set after the batch
      8 most contributors kept (the oldest is dropped beyond it)
Reply { score after the item (a string: Lua numbers reach Redis as integers), at (ms),
        1 when this item crossed the threshold else 0, 1 when it was counted before else 0,
        and when it crossed: id1, contributor1, id2, contributor2, ... }
]]
return runBatch('riskAdd', 2, 8, function(k, a)
  local scoreKey, contributorsKey = KEYS[k + 1], KEYS[k + 2]
  local id, time, points = ARGV[a + 1], tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local halfLife, threshold = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  expireLater(scoreKey, ARGV[a + 7])
  expireLater(contributorsKey, ARGV[a + 7])
  local stored = redis.call('HMGET', scoreKey, 'score', 'at', 'above')
  local score, at, above = tonumber(stored[1]) or 0, tonumber(stored[2]) or time, stored[3] == '1'
  if redis.call('HEXISTS', contributorsKey, id) == 1 then
    if redis.call('HGET', scoreKey, 'crossedBy') == id then
      local crossing = redis.call('HGET', scoreKey, 'crossing')
      if crossing then
        local reply = cjson.decode(crossing)
        reply[4] = 1
        return reply
      end
    end
    return { tostring(score), at, 0, 1 }
  end
  if time > at then
    score = score * math.pow(0.5, (time - at) / halfLife)
    at = time
  else
    points = points * math.pow(0.5, (at - time) / halfLife)
  end
  if score < threshold then above = false end
  score = score + points
  local crossed = (not above) and score >= threshold
  if crossed then above = true end
  redis.call('HSET', scoreKey, 'score', tostring(score), 'at', at, 'above', above and '1' or '0')
  redis.call('HSET', contributorsKey, id, ARGV[a + 2] .. '|' .. ARGV[a + 3] .. '|' .. ARGV[a + 4])
  if redis.call('HLEN', contributorsKey) > tonumber(ARGV[a + 8]) then
    local all = redis.call('HGETALL', contributorsKey)
    local oldest, oldestTime = nil, nil
    for i = 1, #all, 2 do
      local t = tonumber(string.match(all[i + 1], '^([^|]+)'))
      if all[i] ~= id and (oldestTime == nil or t < oldestTime) then oldest, oldestTime = all[i], t end
    end
    if oldest then redis.call('HDEL', contributorsKey, oldest) end
  end
  local reply = { tostring(score), at, crossed and 1 or 0, 0 }
  if crossed then
    local all = redis.call('HGETALL', contributorsKey)
    for i = 1, #all do reply[#reply + 1] = all[i] end
    redis.call('HSET', scoreKey, 'crossedBy', id, 'crossing', cjson.encode(reply))
  end
  return reply
end)
