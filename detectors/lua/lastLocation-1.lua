--[[ lastLocation-1: swap in the newest located event of each key; return the one before it.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, 1 key:
KEYS  1 hash: time = event time ms, id = event id, location = JSON of the newest located event,
        before = JSON of the one it replaced
and 4 arguments:
ARGV  1 event time ms
      2 JSON of this located event
      3 TTL ms of the hash, set after the batch
      4 event id
Reply the location JSON to compare this event with, or false. An event older than the stored
      one is compared with it but does not replace it (events may arrive out of order). A
      redelivered event (same id as the newest) gets the location before it, as it did the
      first time, so a retry reaches the same decision.
]]
return runBatch('lastLocation', 1, 4, function(keys, args)
  local key = keys[1]
  expireLater(key, args[3])
  local stored = redis.call('HMGET', key, 'id', 'time', 'location', 'before')
  if stored[1] == args[4] then return stored[4] end
  local previousTime, previous = stored[2], stored[3]
  if not previousTime or tonumber(args[1]) >= tonumber(previousTime) then
    if previous then
      redis.call('HSET', key, 'time', args[1], 'id', args[4], 'location', args[2], 'before', previous)
    else
      redis.call('HSET', key, 'time', args[1], 'id', args[4], 'location', args[2])
      redis.call('HDEL', key, 'before')
    end
  end
  return previous
end)
