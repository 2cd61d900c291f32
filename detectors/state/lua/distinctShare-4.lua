-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ distinctShare-4: distinctAdd-3 for a rule that counts distinct values of some of its events
only (the failed logins among an IP's attempts), and needs their share of all its events. Every
event is kept with its time and a window either side of the event is read back, so that a late
event can complete a window that ends after it. A batch script (lib/batch.lua): one call carries
any number of items, run in order; one reply per item.
Per item, 4 keys:
KEYS  1 sorted set of the counted events' values: member = value, score = latest event time ms
      2 sorted set of the counted events: member = "<event id>|<value>", score = event time ms
      3 hash: time and id of the last detection for this key (read only; see claimFiring-1)
      4 sorted set of the other events: member = event id, score = event time ms
and 11 arguments:
ARGV  1 value ("" for an event that is not counted and has none)
      2 event id
      3 event time ms
      4 range start ms (inclusive; the event's time less a window, never below the trim)
      5 range end ms (inclusive; the event's time plus a window)
      6 trim: members of the three sets scored below this are dropped, after the batch
      7 TTL ms of the three sets, set after the batch
      8 most events (counted and others) to read back: with more in [start, end], the reply falls
        back to the window ending at the event
      9 least count worth reading: counted values seen at or after start below it, and no window
        holding the event can reach it (the threshold)
     10 1 when the event is counted (it goes to KEYS 1 and 2), else 0 (its id goes to KEYS 4)
     11 most values / event ids to return in the fallback
Reply { bound, false, 0 } when bound < ARGV[9], where bound = counted values last seen at or after start;
      { bound, "<time>|<id>" of the last detection or false, events in [start, end], false, 0, 0,
        0, m, counted member1, time1, ... (m pairs), other member1, time1, ... } with every event
        in [start, end], each set oldest first, when they are at most ARGV[8]; otherwise the
        fallback, the window ending at the event:
      { bound, fired, events in [start, end], counted values last seen in [start, time], counted
        events in [start, time], other events in [start, time], n, value1..value_n, m, counted
        member1, time1, ... } (values and counted events oldest first, each at most ARGV[11])
]]
return runBatch('distinctShare', 4, 11, function(k, a)
  local values, counted, others = KEYS[k + 1], KEYS[k + 2], KEYS[k + 4]
  local time, start, finish = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  for _, key in ipairs({ values, counted, others }) do
    trimLater(key, ARGV[a + 6])
    expireLater(key, ARGV[a + 7])
  end
  if ARGV[a + 10] == '1' then
    redis.call('ZADD', values, 'GT', time, ARGV[a + 1])
    redis.call('ZADD', counted, time, ARGV[a + 2] .. '|' .. ARGV[a + 1])
  else
    redis.call('ZADD', others, time, ARGV[a + 2])
  end
  local bound = redis.call('ZCOUNT', values, start, '+inf')
  if bound < tonumber(ARGV[a + 9]) then return { bound, false, 0 } end
  local held = redis.call('ZCOUNT', counted, start, finish) + redis.call('ZCOUNT', others, start, finish)
  local result = { bound, firedMark(KEYS[k + 3]), held }
  if held <= tonumber(ARGV[a + 8]) then
    local mine = redis.call('ZRANGEBYSCORE', counted, start, finish, 'WITHSCORES')
    local rest = redis.call('ZRANGEBYSCORE', others, start, finish, 'WITHSCORES')
    result[4], result[5], result[6], result[7], result[8] = false, 0, 0, 0, #mine / 2
    for i = 1, #mine do result[#result + 1] = mine[i] end
    for i = 1, #rest do result[#result + 1] = rest[i] end
    return result
  end
  local limit = tonumber(ARGV[a + 11])
  local seen = redis.call('ZRANGEBYSCORE', values, start, time, 'LIMIT', 0, limit)
  local mine = redis.call('ZRANGEBYSCORE', counted, start, time, 'WITHSCORES', 'LIMIT', 0, limit)
  result[4] = redis.call('ZCOUNT', values, start, time)
  result[5] = redis.call('ZCOUNT', counted, start, time)
  result[6] = redis.call('ZCOUNT', others, start, time)
  result[7] = #seen
  for i = 1, #seen do result[#result + 1] = seen[i] end
  result[#result + 1] = #mine / 2
  for i = 1, #mine do result[#result + 1] = mine[i] end
  return result
end)
