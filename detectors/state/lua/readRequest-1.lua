-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ readRequest-1: the policy decisions recorded for a request.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, the keys and arguments below (KEYS[k + n], ARGV[a + n] in the body); the reply below is the item's.
KEYS[1]  hash: policy kind -> outcome (see noteRequest-1)
Returns  flat list kind1, outcome1, ... (empty when none arrived yet)
]]
return runBatch('readRequest', 1, 0, function(k, a)
  return redis.call('HGETALL', KEYS[k + 1])
end)
