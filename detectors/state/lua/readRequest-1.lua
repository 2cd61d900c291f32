-- version: 1  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ readRequest-1: the policy decisions recorded for a request.
KEYS[1]  hash: policy kind -> outcome (see noteRequest-1)
Returns  flat list kind1, outcome1, ... (empty when none arrived yet)
]]
return redis.call('HGETALL', KEYS[1])
