-- version: 3  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ windowAdd-2 (version 3): add events to sliding event-time windows and read each window back. A batch
script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, 2 keys:
KEYS  1 sorted set of the window: member = event id (a redelivery adds nothing), score = event time ms
      2 hash: time and id of the last detection for this key (read only; see claimFiring-1)
and 8 arguments:
ARGV  1 event id
      2 event time ms
      3 window start ms (inclusive; never below the trim)
      4 window end ms (inclusive; the engine passes the event's time plus a window, so a late
        event can complete a window that ends after it)
      5 trim: members scored below this are dropped, after the batch (older than any window still open)
      6 TTL ms of the window, set after the batch
      7 most members to return
      8 least count worth reading: below it the reply is the count alone (the rule's threshold:
        a window that can't reach it needs no members and no fired mark)
Reply { count in [start, end], "<time>|<id>" of the last detection or false, upTo, first, member1, score1, ... }
      { count, false } when count < ARGV[8].
      When count is at most ARGV[7]: upTo and first are false, and every member of [start, end]
      follows, oldest first.
      Otherwise (a flood: more than the reply holds), the window that ends at the event: upTo is
      the count in [start, event time], first the score of its oldest member, and the members are
      its newest ARGV[7], oldest first. (Version 2 returned the oldest ARGV[7] of [start, end]: in a
      flood each detection after the first then came about a window late, counting a few seconds.)
]]
return runBatch('windowAdd', 2, 8, function(k, a)
  local window, time, start, finish = KEYS[k + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  trimLater(window, ARGV[a + 5])
  expireLater(window, ARGV[a + 6])
  redis.call('ZADD', window, time, ARGV[a + 1])
  local count = redis.call('ZCOUNT', window, start, finish)
  if count < tonumber(ARGV[a + 8]) then return { count, false } end
  local limit = tonumber(ARGV[a + 7])
  local result = { count, firedMark(KEYS[k + 2]) }
  if count <= limit then
    result[3] = false
    result[4] = false
    local members = redis.call('ZRANGEBYSCORE', window, start, finish, 'WITHSCORES')
    for i = 1, #members do result[#result + 1] = members[i] end
    return result
  end
  result[3] = redis.call('ZCOUNT', window, start, time)
  local first = redis.call('ZRANGEBYSCORE', window, start, time, 'WITHSCORES', 'LIMIT', 0, 1)
  result[4] = first[2] or false
  local newest = redis.call('ZREVRANGEBYSCORE', window, time, start, 'WITHSCORES', 'LIMIT', 0, limit)
  for i = #newest - 1, 1, -2 do
    result[#result + 1] = newest[i]
    result[#result + 1] = newest[i + 1]
  end
  return result
end)
