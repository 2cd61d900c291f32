-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ noteRequest-1: record one policy decision of a request, for its invocation to find.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, the keys and arguments below (KEYS[k + n], ARGV[a + n] in the body); the reply below is the item's.
KEYS[1]  hash: policy kind -> outcome ("pass" / "fail"); a fail is never overwritten by a pass
ARGV[1]  policy kind
ARGV[2]  outcome
ARGV[3]  TTL ms
Returns  1
]]
return runBatch('noteRequest', 1, 3, function(k, a)
  local request = KEYS[k + 1]
  if ARGV[a + 2] == 'fail' or redis.call('HGET', request, ARGV[a + 1]) ~= 'fail' then
    redis.call('HSET', request, ARGV[a + 1], ARGV[a + 2])
  end
  redis.call('PEXPIRE', request, ARGV[a + 3])
  return 1
end)
