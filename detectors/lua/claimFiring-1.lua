--[[ claimFiring-1: claim the right to fire for a key, unless it fired within the cooldown.
Concurrent batches (partitions consumed in parallel, several instances) may each decide to
fire for the same key and window; only the first claim wins, so one window gives one detection.
KEYS[1]  string: event time ms of the last detection for this key
ARGV[1]  event time ms of this detection
ARGV[2]  cooldown ms: a claim within this distance (either side) of the stored time is refused
ARGV[3]  TTL ms of KEYS[1]
Returns  1 when claimed (KEYS[1] now holds the later of the two times), 0 when refused
]]
local current = redis.call('GET', KEYS[1])
local time = tonumber(ARGV[1])
if current and math.abs(time - tonumber(current)) < tonumber(ARGV[2]) then
  return 0
end
if not current or time > tonumber(current) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
