--[[ firstSeen-1: note that keys were seen with values; say for each whether its value was known.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, 1 key:
KEYS  1 sorted set of known values: member = value, score = latest event time ms it was seen at
and 4 arguments:
ARGV  1 value
      2 event time ms
      3 trim: values last seen below this are forgotten (the history horizon); they are dropped
        after the batch, and no reply counts them
      4 TTL ms of the sorted set (the horizon), set after the batch
Reply { time ms the value was last seen or false, number of other values known }
      A redelivered event (the value last seen at exactly this time) is answered as the first
      time: "known" then counts only values seen before it.
]]
return runBatch('firstSeen', 1, 4, function(keys, args)
  local seen, value, time, trim = keys[1], args[1], args[2], args[3]
  trimLater(seen, trim)
  expireLater(seen, args[4])
  local previous = redis.call('ZSCORE', seen, value)
  if previous and tonumber(previous) < tonumber(trim) then previous = false end
  local known
  if previous and tonumber(previous) == tonumber(time) then
    known = redis.call('ZCOUNT', seen, trim, '(' .. time)
  else
    known = redis.call('ZCOUNT', seen, trim, '+inf')
    if previous then known = known - 1 end
  end
  redis.call('ZADD', seen, 'GT', time, value)
  return { previous, known }
end)
