--[[ lastLocation-1: swap in the newest located event of each key; return the one before it.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, 1 key:
KEYS  1 hash: time = event time ms, id = event id, location = JSON of the newest located event,
        before = JSON of the one it replaced, kept = event time ms the TTL was last renewed at
and 5 arguments:
ARGV  1 event time ms
      2 JSON of this located event
      3 TTL ms of the hash, set after the batch
      4 event id
      5 renewal ms: the TTL is renewed when the hash is new or was renewed this long before the
        event, not on every event (it is far longer than this)
Reply the location JSON to compare this event with, or false. An event older than the stored
      one is compared with it but does not replace it (events may arrive out of order). A
      redelivered event (same id as the newest) gets the location before it, as it did the
      first time, so a retry reaches the same decision.
]]
return runBatch('lastLocation', 1, 5, function(k, a)
  local key, time, location, id = KEYS[k + 1], ARGV[a + 1], ARGV[a + 2], ARGV[a + 4]
  local stored = redis.call('HMGET', key, 'id', 'time', 'location', 'before', 'kept')
  local at, kept = tonumber(time), stored[5]
  if not kept or at - tonumber(kept) >= tonumber(ARGV[a + 5]) then
    expireLater(key, ARGV[a + 3])
    kept = time
  end
  if stored[1] == id then return stored[4] end
  local previousTime, previous = stored[2], stored[3]
  if not previousTime or at >= tonumber(previousTime) then
    if previous then
      redis.call('HSET', key, 'time', time, 'id', id, 'location', location, 'before', previous, 'kept', kept)
    else
      redis.call('HSET', key, 'time', time, 'id', id, 'location', location, 'kept', kept)
      redis.call('HDEL', key, 'before')
    end
  elseif kept ~= stored[5] then
    redis.call('HSET', key, 'kept', kept)
  end
  return previous
end)
