-- version: 1  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ noteRequest-1: record one policy decision of a request, for its invocation to find.
KEYS[1]  hash: policy kind -> outcome ("pass" / "fail"); a fail is never overwritten by a pass
ARGV[1]  policy kind
ARGV[2]  outcome
ARGV[3]  TTL ms
Returns  1
]]
if ARGV[2] == 'fail' or redis.call('HGET', KEYS[1], ARGV[1]) ~= 'fail' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
