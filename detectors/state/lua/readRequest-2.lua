-- version: 3  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ readRequest-2: the policy decisions recorded for a request, and the user its authentication named.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, the keys and arguments below (KEYS[k + n], ARGV[a + n] in the body); the reply below is the item's.
KEYS[1]  hash: policy kind -> outcome (see noteRequest-2)
KEYS[2]  string: the user id an authentication pass named (see noteRequest-2)
Returns  { flat list kind1, outcome1, ... (empty when none arrived yet), the user id or false }
]]
return runBatch('readRequest', 2, 0, function(k, a)
  return { redis.call('HGETALL', KEYS[k + 1]), redis.call('GET', KEYS[k + 2]) }
end)
