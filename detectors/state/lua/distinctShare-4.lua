-- version: 3  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ distinctShare-4: distinctAdd-3 for a rule that counts distinct values of some of its events
only (the failed logins among an IP's attempts), and needs their share of the distinct values of
all its events (the users that failed among the users that tried; version 3: version 2 counted
events, and one IP padding its attempts with one account's sign-ins stayed under any share). Every
event is kept with its time and a window either side of the event is read back, so that a late
event can complete a window that ends after it. A batch script (lib/batch.lua): one call carries
any number of items, run in order; one reply per item.
Per item, 4 keys:
KEYS  1 sorted set of the counted events' values: member = value, score = latest event time ms
      2 sorted set of the counted events: member = "<event id>|<value>", score = event time ms
      3 hash: time and id of the last detection for this key (read only; see claimFiring-1)
      4 sorted set of the other events: member = "<event id>|<value>" (value "" when none), score = event time ms
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
     10 1 when the event is counted (it goes to KEYS 1 and 2), else 0 (it goes to KEYS 4)
     11 most values / event ids to return in the fallback
Reply { bound, false, 0 } when bound < ARGV[9], where bound = counted values last seen at or after start;
      { bound, "<time>|<id>" of the last detection or false, events in [start, end], false, 0, 0,
        0, m, counted member1, time1, ... (m pairs), other member1, time1, ... } with every event
        in [start, end], each set oldest first, when they are at most ARGV[8]; otherwise the
        fallback, the window ending at the event:
      { bound, fired, events in [start, end], counted values last seen in [start, time] (c), c
        again (the share's counted values), other values (o), n, value1..value_n, m, counted
        member1, time1, ... } (values and counted events oldest first, each at most ARGV[11]), where
        o = distinct values of the newest ARGV[8] other events in [start, time] that are not among
        the c: the share is c / (c + o).
Why o reads at most ARGV[8] others: all the others of a flood would cost the whole flood on every
event. The newest ARGV[8] (what the read above would take) hold a subset of the window's values,
so o is a lower bound and c / (c + o) at least the share of the full read: the fallback can fire
where a full read would not (a NAT with at least as many failing users as distinct users signing
in among its newest ARGV[8] other events), never stay quiet where it would fire. Padding with one
account's sign-ins adds one value either way.
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
    redis.call('ZADD', others, time, ARGV[a + 2] .. '|' .. ARGV[a + 1])
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
  result[5] = result[4]
  -- A value is among the c when its latest counted event is in [start, time], as ZCOUNT counted it.
  local from, to, other, checked = tonumber(start), tonumber(time), 0, {}
  local recent = redis.call('ZREVRANGEBYSCORE', others, time, start, 'LIMIT', 0, tonumber(ARGV[a + 8]))
  for i = 1, #recent do
    local member = recent[i]
    local separator = string.find(member, '|', 1, true)
    local value = separator and string.sub(member, separator + 1) or ''
    if value ~= '' and not checked[value] then
      checked[value] = true
      local last = tonumber(redis.call('ZSCORE', values, value))
      if last == nil or last < from or last > to then other = other + 1 end
    end
  end
  result[6] = other
  result[7] = #seen
  for i = 1, #seen do result[#result + 1] = seen[i] end
  result[#result + 1] = #mine / 2
  for i = 1, #mine do result[#result + 1] = mine[i] end
  return result
end)
