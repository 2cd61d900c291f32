-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ distinctAdd-3: add values of a field to sliding windows of distinct values and read each back.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, 3 keys:
KEYS  1 sorted set of values: member = value, score = latest event time ms it was seen at
      2 sorted set of event ids: member = event id, score = event time ms (evidence)
      3 hash: time and id of the last detection for this key (read only; see claimFiring-1)
and 9 arguments:
ARGV  1 value
      2 event id
      3 event time ms
      4 window start ms (inclusive; never below the trim)
      5 window end ms (inclusive)
      6 trim: members of both sets scored below this are dropped, after the batch
      7 TTL ms of both sets, set after the batch
      8 most values / ids to return
      9 least count worth reading: below it the reply is { count, false, 0 } (the rule's threshold)
Reply { distinct values whose latest time is in [start, end], "<time>|<id>" of the last detection
        or false, number of values n, value1..value_n, id1..id_m } (values and ids oldest first,
        each at most ARGV[8])
]]
return runBatch('distinctAdd', 3, 9, function(k, a)
  local values, ids = KEYS[k + 1], KEYS[k + 2]
  local time, start, finish, trim, ttl = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
  trimLater(values, trim)
  trimLater(ids, trim)
  expireLater(values, ttl)
  expireLater(ids, ttl)
  redis.call('ZADD', values, 'GT', time, ARGV[a + 1])
  redis.call('ZADD', ids, time, ARGV[a + 2])
  -- Up to the event's own time only: a late event must not count values seen after it.
  local count = redis.call('ZCOUNT', values, start, finish)
  if count < tonumber(ARGV[a + 9]) then return { count, false, 0 } end
  local limit = tonumber(ARGV[a + 8])
  local seen = redis.call('ZRANGEBYSCORE', values, start, finish, 'LIMIT', 0, limit)
  local evidence = redis.call('ZRANGEBYSCORE', ids, start, finish, 'LIMIT', 0, limit)
  local result = { count, firedMark(KEYS[k + 3]), #seen }
  for i = 1, #seen do result[#result + 1] = seen[i] end
  for i = 1, #evidence do result[#result + 1] = evidence[i] end
  return result
end)
