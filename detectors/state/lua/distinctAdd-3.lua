-- version: 3  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ distinctAdd-3: add values of a field to sliding event-time windows of distinct values, and read
back what the engine needs to find the first window holding the event that reaches the threshold.
Events arrive out of order (partitions read at different paces, a backlog), so a late event may
complete a window that ends after it: every event is kept with its time, and a window either side
of the event is read back. A batch script (lib/batch.lua): one call carries any number of items,
run in order; one reply per item.
Per item, 3 keys:
KEYS  1 sorted set of values: member = value, score = latest event time ms it was seen at (a bound
        on what a window can hold, and the count when too many events are held to read them)
      2 sorted set of events: member = "<event id>|<value>" (a redelivery adds nothing), score = event time ms
      3 hash: time and id of the last detection for this key (read only; see claimFiring-1)
and 10 arguments:
ARGV  1 value
      2 event id
      3 event time ms
      4 range start ms (inclusive; the event's time less a window, never below the trim)
      5 range end ms (inclusive; the event's time plus a window)
      6 trim: members of both sets scored below this are dropped, after the batch
      7 TTL ms of both sets, set after the batch
      8 most events to read back: with more in [start, end], the reply falls back to the window
        ending at the event
      9 least count worth reading: values seen at or after start (every value with an event in
        [start, end] is one) below it, and no window holding the event can reach it (the threshold)
     10 most values / event ids to return in the fallback
Reply { bound, false, 0 } when bound < ARGV[9], where bound = values last seen at or after start;
      { bound, "<time>|<id>" of the last detection or false, events in [start, end], false, 0,
        member1, time1, ... } with every event in [start, end], oldest first, when they are at
        most ARGV[8]; otherwise the fallback, the window ending at the event:
      { bound, fired, events in [start, end], values last seen in [start, time] (exact for an
        event read in order, a lower bound for a late one), n, value1..value_n, member1, time1, ... }
        (values and the events in [start, time] oldest first, each at most ARGV[10])
]]
return runBatch('distinctAdd', 3, 10, function(k, a)
  local values, events = KEYS[k + 1], KEYS[k + 2]
  local value, time, start, finish = ARGV[a + 1], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  trimLater(values, ARGV[a + 6])
  trimLater(events, ARGV[a + 6])
  expireLater(values, ARGV[a + 7])
  expireLater(events, ARGV[a + 7])
  redis.call('ZADD', values, 'GT', time, value)
  redis.call('ZADD', events, time, ARGV[a + 2] .. '|' .. value)
  local bound = redis.call('ZCOUNT', values, start, '+inf')
  if bound < tonumber(ARGV[a + 9]) then return { bound, false, 0 } end
  local held = redis.call('ZCOUNT', events, start, finish)
  local result = { bound, firedMark(KEYS[k + 3]), held }
  local members
  if held <= tonumber(ARGV[a + 8]) then
    result[4] = false
    result[5] = 0
    members = redis.call('ZRANGEBYSCORE', events, start, finish, 'WITHSCORES')
  else
    local limit = tonumber(ARGV[a + 10])
    local seen = redis.call('ZRANGEBYSCORE', values, start, time, 'LIMIT', 0, limit)
    result[4] = redis.call('ZCOUNT', values, start, time)
    result[5] = #seen
    for i = 1, #seen do result[#result + 1] = seen[i] end
    members = redis.call('ZRANGEBYSCORE', events, start, time, 'WITHSCORES', 'LIMIT', 0, limit)
  end
  for i = 1, #members do result[#result + 1] = members[i] end
  return result
end)
