-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ readContext-3: what is known of a user's (and session's) device when one of their requests arrives.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, the keys and arguments below (KEYS[k + n], ARGV[a + n] in the body); the reply below is the item's.
KEYS[1]  hash: the user's last device and place (see noteDevice-3)
KEYS[2]  hash: the user's devices: device id -> first seen ms
KEYS[3]  hash: the session's device and place
ARGV[1]  1 to read the session, 0 for the user only
Returns  { device id or false, first seen ms of that device or false, country or false,
           number of devices the user has, 1 when it came from the session else 0 }
]]
return runBatch('readContext', 3, 1, function(k, a)
  local source = KEYS[k + 1]
  local fromSession = 0
  if ARGV[a + 1] == '1' and redis.call('EXISTS', KEYS[k + 3]) == 1 then
    source = KEYS[k + 3]
    fromSession = 1
  end
  local device = redis.call('HGET', source, 'device')
  local firstSeen = false
  if device then firstSeen = redis.call('HGET', KEYS[k + 2], device) end
  local country = redis.call('HGET', source, 'country')
  if country == '' then country = false end
  return { device, firstSeen, country, redis.call('HLEN', KEYS[k + 2]), fromSession }
end)
