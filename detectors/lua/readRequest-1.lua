--[[ readRequest-1: the policy decisions recorded for a request.
KEYS[1]  hash: policy kind -> outcome (see noteRequest-1)
Returns  flat list kind1, outcome1, ... (empty when none arrived yet)
]]
return redis.call('HGETALL', KEYS[1])
