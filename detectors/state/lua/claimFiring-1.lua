-- version: 1  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ claimFiring-1: claim the right to fire for a key, unless another detection fired within the cooldown.
Concurrent batches (partitions consumed in parallel, several instances) may each decide to
fire for the same key and window; only the first claim wins, so one window gives one detection.
A redelivered batch makes the same claim again with the same detection id: that claim is
granted again, so a retry re-emits the same detection (same id) instead of losing it.
KEYS[1]  hash: time = event time ms of the last detection, id = its detection id
ARGV[1]  event time ms of this detection
ARGV[2]  cooldown ms: a claim within this distance (either side) of the stored time is refused
ARGV[3]  TTL ms of KEYS[1]
ARGV[4]  detection id
Returns  1 when claimed (or already claimed by this same detection id at this same time), 0 when refused
]]
local current = redis.call('HGET', KEYS[1], 'time')
local holder = redis.call('HGET', KEYS[1], 'id')
local time = tonumber(ARGV[1])
if holder == ARGV[4] and current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if current and math.abs(time - tonumber(current)) < tonumber(ARGV[2]) then
  return 0
end
if not current or time > tonumber(current) then
  redis.call('HSET', KEYS[1], 'time', ARGV[1], 'id', ARGV[4])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
