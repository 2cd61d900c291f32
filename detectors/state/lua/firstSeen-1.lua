-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ firstSeen-1: note that keys were seen with values; say for each whether its value was known.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, 1 key:
KEYS  1 sorted set of known values: member = value, score = time ms it was last recorded at
and 5 arguments:
ARGV  1 value
      2 event time ms
      3 trim: values last seen below this are forgotten (the history horizon); they are dropped
        after the batch, and no reply counts them
      4 TTL ms of the sorted set (the horizon), set after the batch
      5 resolution ms: a value recorded less than this before the event is not recorded again
        (nor the set trimmed, nor its TTL renewed, since that was done when it was recorded),
        so a value in steady use costs one read. Its last-seen time is then up to this much early.
Reply { time ms the value was last recorded or false, number of other values known }
      The number is only counted for a value not known (false when the value is known): a known
      value is never new. A redelivered event (the value recorded at exactly this time) is
      answered as the first time: the number then counts only values seen before it.
]]
return runBatch('firstSeen', 1, 5, function(k, a)
  local seen, value, time, trim = KEYS[k + 1], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local previous = redis.call('ZSCORE', seen, value)
  local at, last = tonumber(time), previous and tonumber(previous)
  if last and last < tonumber(trim) then previous, last = false, nil end
  if last and last ~= at and at - last < tonumber(ARGV[a + 5]) then return { previous, false } end
  trimLater(seen, trim)
  expireLater(seen, ARGV[a + 4])
  local known
  if last == at then
    known = redis.call('ZCOUNT', seen, trim, '(' .. time)
  else
    known = redis.call('ZCOUNT', seen, trim, '+inf')
    if last then known = known - 1 end
  end
  redis.call('ZADD', seen, 'GT', time, value)
  return { previous, known }
end)
