-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ lastLocation-1: swap in the newest located event of each key; return the one before it.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Each key's hash is read once per call, kept in memory while the items run and written back once.
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
local hashes = {}

-- The hash of a key: read on first use in this call, written back at the end when it changed.
local function hashOf(key)
  local hash = hashes[key]
  if hash then return hash end
  local stored = redis.call('HMGET', key, 'id', 'time', 'location', 'before', 'kept')
  hash = { id = stored[1], time = stored[2], location = stored[3], before = stored[4], kept = stored[5], changed = false }
  hashes[key] = hash
  atEnd(function()
    if not hash.changed then return end
    if hash.before then
      redis.call('HSET', key, 'time', hash.time, 'id', hash.id, 'location', hash.location, 'before', hash.before, 'kept', hash.kept)
    else
      redis.call('HSET', key, 'time', hash.time, 'id', hash.id, 'location', hash.location, 'kept', hash.kept)
      redis.call('HDEL', key, 'before')
    end
  end)
  return hash
end

return runBatch('lastLocation', 1, 5, function(k, a)
  local key, time, location, id = KEYS[k + 1], ARGV[a + 1], ARGV[a + 2], ARGV[a + 4]
  local hash = hashOf(key)
  local at = tonumber(time)
  if not hash.kept or at - tonumber(hash.kept) >= tonumber(ARGV[a + 5]) then
    expireLater(key, ARGV[a + 3])
    -- Renewed: remembered only when the hash is written (a hash never written gets no TTL).
    if hash.time then
      hash.kept = time
      hash.changed = true
    end
  end
  if hash.id == id then return hash.before end
  local previous = hash.location
  if not hash.time or at >= tonumber(hash.time) then
    hash.before = previous
    hash.time, hash.id, hash.location = time, id, location
    if not hash.kept then hash.kept = time end
    hash.changed = true
  end
  return previous
end)
