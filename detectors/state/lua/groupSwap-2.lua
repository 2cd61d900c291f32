-- version: 1  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ groupSwap-2: compare-and-set of one destination's notification grouping state of one
incident, and of the incident's place in the destination's index of due work. The notifier
computes the new state in TypeScript (the pure policy, detectors/alerting/notify/grouping.ts)
from the state it read; this script stores it only if nobody wrote since, so several notifier
instances never hand out the same notification twice, and a state never goes back.
KEYS[1]  hash: v = version (a counter), s = the state as JSON
KEYS[2]  sorted set of the destination: member = alert id, score = when its state is next due (ms)
ARGV[1]  the version read (0 when the state was absent)
ARGV[2]  the new state (JSON)
ARGV[3]  when it is next due (ms), or '' when never: the member is removed
ARGV[4]  the alert id (the member of KEYS[2])
ARGV[5]  TTL ms of KEYS[1], and of KEYS[2] (refreshed by every write to the destination)
Returns  the new version, or 0 when the stored version is not ARGV[1] (read again)
]]
local current = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
local version = current + 1
redis.call('HSET', KEYS[1], 'v', version, 's', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[2], ARGV[4])
else
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  local ttl = redis.call('PTTL', KEYS[2])
  if ttl < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
end
return version
