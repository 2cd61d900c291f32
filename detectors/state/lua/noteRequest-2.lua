-- version: 3  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ noteRequest-2: record one policy decision of a request, for its invocation to find.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, the keys and arguments below (KEYS[k + n], ARGV[a + n] in the body); the reply below is the item's.
KEYS[1]  hash: policy kind -> outcome ("pass" / "fail"); a fail is never overwritten by a pass
KEYS[2]  string: the user id an authentication pass of the request named; "" once passes named
         two different users (a request id is often the client's own X-Request-Id, and a client
         may send one id with many requests). Same hash tag as KEYS[1].
ARGV[1]  policy kind
ARGV[2]  outcome
ARGV[3]  TTL ms
ARGV[4]  the user id an authentication pass names ("" for any other decision, or a pass naming nobody)
Returns  1
]]
return runBatch('noteRequest', 2, 4, function(k, a)
  local request, passer = KEYS[k + 1], KEYS[k + 2]
  local kind, outcome, ttl, user = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  if outcome == 'fail' or redis.call('HGET', request, kind) ~= 'fail' then
    redis.call('HSET', request, kind, outcome)
  end
  redis.call('PEXPIRE', request, ttl)
  if kind == 'authn' and outcome == 'pass' and user ~= '' then
    local named = redis.call('GET', passer)
    if named ~= false and named ~= user then user = '' end
    redis.call('SET', passer, user, 'PX', ttl)
  else
    redis.call('PEXPIRE', passer, ttl)
  end
  return 1
end)
