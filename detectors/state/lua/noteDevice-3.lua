-- version: 1  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ noteDevice-3: remember the device and place a user (and a session) was last seen with.
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
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
local newer = tonumber(ARGV[2]) >= tonumber(redis.call('HGET', KEYS[1], 'time') or '0')
if newer then
  redis.call('HSET', KEYS[1], 'device', ARGV[1], 'country', ARGV[3], 'city', ARGV[4], 'time', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
if ARGV[6] ~= '' then
  -- Like the user's: an older event arriving late does not replace the session's device.
  if tonumber(ARGV[2]) >= tonumber(redis.call('HGET', KEYS[3], 'time') or '0') then
    redis.call('HSET', KEYS[3], 'device', ARGV[1], 'country', ARGV[3], 'time', ARGV[2])
  end
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
end
return redis.call('HLEN', KEYS[2])
