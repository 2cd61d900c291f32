-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ sequenceAdd-2: record the steps events matched and read each key's steps in the window.
A batch script (lib/batch.lua): one call carries any number of items, run in order; one reply per item.
Per item, 2 keys:
KEYS  1 sorted set: member = "<step index>:<event id>", score = event time ms
      2 hash: time and id of the last detection for this key (read only; see claimFiring-1)
and 9 arguments:
ARGV  1 event time ms
      2 window start ms (inclusive; never below the trim)
      3 window end ms (inclusive)
      4 trim: members scored below this are dropped, after the batch
      5 TTL ms of the sorted set, set after the batch
      6 most members to return
      7 event id
      8 the steps the event matched, as step indices joined by commas ("0" or "0,2")
      9 the final step's index: final steps before the event are left out of the reply (a chain
        holding this event ends at or after it)
Reply { "<time>|<id>" of the last detection or false, member1, score1, ... } newest first, at most
      ARGV[6] read (a long history of one step must not push the latest steps out of the reply)
]]
return runBatch('sequenceAdd', 2, 9, function(k, a)
  local steps, time, id = KEYS[k + 1], ARGV[a + 1], ARGV[a + 7]
  trimLater(steps, ARGV[a + 4])
  expireLater(steps, ARGV[a + 5])
  for step in string.gmatch(ARGV[a + 8], '[^,]+') do redis.call('ZADD', steps, time, step .. ':' .. id) end
  local members = redis.call('ZREVRANGEBYSCORE', steps, ARGV[a + 3], ARGV[a + 2], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[a + 6]))
  local result = { firedMark(KEYS[k + 2]) }
  local final, at = ARGV[a + 9] .. ':', tonumber(time)
  for i = 1, #members, 2 do
    if tonumber(members[i + 1]) >= at or string.sub(members[i], 1, #final) ~= final then
      result[#result + 1] = members[i]
      result[#result + 1] = members[i + 1]
    end
  end
  return result
end)
