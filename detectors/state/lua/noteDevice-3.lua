-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ noteDevice-3: remember the device and place a user (and a session) was last seen with.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, the keys and arguments below (KEYS[k + n], ARGV[a + n] in the body); the reply below is the item's.
KEYS[1]  hash: the user's last device and place (device, country, city, time)
KEYS[2]  hash: the user's devices: device id -> first seen ms (never overwritten)
KEYS[3]  hash: the session's device and place (ignored when ARGV[6] is "")
ARGV[1]  device id
ARGV[2]  event time ms
ARGV[3]  country ("" when unknown)
ARGV[4]  city ("" when unknown)
ARGV[5]  TTL ms of all three keys
ARGV[6]  session id, or ""
Returns  the number of devices the user has
]]
return runBatch('noteDevice', 3, 6, function(k, a)
  local last, devices, session = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local device, time, ttl = ARGV[a + 1], ARGV[a + 2], ARGV[a + 5]
  redis.call('HSETNX', devices, device, time)
  local newer = tonumber(time) >= tonumber(redis.call('HGET', last, 'time') or '0')
  if newer then
    redis.call('HSET', last, 'device', device, 'country', ARGV[a + 3], 'city', ARGV[a + 4], 'time', time)
  end
  redis.call('PEXPIRE', last, ttl)
  redis.call('PEXPIRE', devices, ttl)
  if ARGV[a + 6] ~= '' then
    -- Like the user's: an older event arriving late does not replace the session's device.
    if tonumber(time) >= tonumber(redis.call('HGET', session, 'time') or '0') then
      redis.call('HSET', session, 'device', device, 'country', ARGV[a + 3], 'time', time)
    end
    redis.call('PEXPIRE', session, ttl)
  end
  return redis.call('HLEN', devices)
end)
