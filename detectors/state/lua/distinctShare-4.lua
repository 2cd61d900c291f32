-- version: 1  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ distinctShare-4: distinctAdd-3 for a rule that counts distinct values of some of its events
only (the failed logins among an IP's attempts), and needs their share of all its events. A
batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, 4 keys:
KEYS  1 sorted set of the counted events' values: member = value, score = latest event time ms
      2 sorted set of the counted events' ids: member = event id, score = event time ms (evidence)
      3 hash: time and id of the last detection for this key (read only; see claimFiring-1)
      4 sorted set of the other events' ids: member = event id, score = event time ms
and 10 arguments:
ARGV  1 value ("" for an event that is not counted and has none)
      2 event id
      3 event time ms
      4 window start ms (inclusive; never below the trim)
      5 window end ms (inclusive)
      6 trim: members of the three sets scored below this are dropped, after the batch
      7 TTL ms of the three sets, set after the batch
      8 most values / ids to return
      9 least count worth reading: below it no values, ids or fired mark are read (the rule's threshold)
     10 1 when the event is counted (its value and id go to KEYS 1 and 2), else 0 (its id goes to KEYS 4)
Reply { distinct counted values whose latest time is in [start, end], counted events in [start,
        end], other events in [start, end], "<time>|<id>" of the last detection or false,
        number of values n, value1..value_n, id1..id_m } (values and ids oldest first, each at
        most ARGV[8]); { count, counted, others, false, 0 } when count < ARGV[9]
]]
return runBatch('distinctShare', 4, 10, function(k, a)
  local values, ids, others = KEYS[k + 1], KEYS[k + 2], KEYS[k + 4]
  local time, start, finish, trim, ttl = ARGV[a + 3], ARGV[a + 4], ARGV[a + 5], ARGV[a + 6], ARGV[a + 7]
  for _, key in ipairs({ values, ids, others }) do
    trimLater(key, trim)
    expireLater(key, ttl)
  end
  if ARGV[a + 10] == '1' then
    redis.call('ZADD', values, 'GT', time, ARGV[a + 1])
    redis.call('ZADD', ids, time, ARGV[a + 2])
  else
    redis.call('ZADD', others, time, ARGV[a + 2])
  end
  -- Up to the event's own time only: a late event must not count what was seen after it.
  local count = redis.call('ZCOUNT', values, start, finish)
  local counted = redis.call('ZCOUNT', ids, start, finish)
  local rest = redis.call('ZCOUNT', others, start, finish)
  if count < tonumber(ARGV[a + 9]) then return { count, counted, rest, false, 0 } end
  local limit = tonumber(ARGV[a + 8])
  local seen = redis.call('ZRANGEBYSCORE', values, start, finish, 'LIMIT', 0, limit)
  local evidence = redis.call('ZRANGEBYSCORE', ids, start, finish, 'LIMIT', 0, limit)
  local result = { count, counted, rest, firedMark(KEYS[k + 3]), #seen }
  for i = 1, #seen do result[#result + 1] = seen[i] end
  for i = 1, #evidence do result[#result + 1] = evidence[i] end
  return result
end)
