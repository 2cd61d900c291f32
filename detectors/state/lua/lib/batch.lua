--[[ batch.lua: prepended to every batch script (see redis-scripts.ts). A batch script runs a
function `one(k, a)` for each item of a call, in order, as if each item were a call of its
own, and returns one reply per item. KEYS holds K keys per item and ARGV A arguments per item,
item after item. Work that only has to happen once per key is deferred to the end of the call:
trimming old members (callers never read below the trim) and setting TTLs. An item that fails
gets an error reply in its place; the other items are unaffected.
]]
local trims, expires, finishers, firedMarks = {}, {}, {}, {}

--- Drop the members of sorted set `key` scored below `below` (an argument: a string of digits),
--- once, after the whole batch, with the highest mark any item gave.
local function trimLater(key, below)
  local current = trims[key]
  if current == nil or tonumber(below) > tonumber(current) then trims[key] = below end
end

--- Set the TTL of `key` (ms), once, after the whole batch (and after the finishers).
local function expireLater(key, ttl)
  local current = expires[key]
  if current == nil or tonumber(ttl) > tonumber(current) then expires[key] = ttl end
end

--- Run `fn` after every item, before trims and TTLs (write back state kept in memory).
local function atEnd(fn)
  finishers[#finishers + 1] = fn
end

--- "<time>|<id>" of the last detection in the fired hash `key`, or false. The hash is written
--- only by claimFiring, after the batch, so one read per key and batch is enough.
local function firedMark(key)
  local mark = firedMarks[key]
  if mark == nil then
    local stored = redis.call('HMGET', key, 'time', 'id')
    if stored[1] then mark = stored[1] .. '|' .. (stored[2] or '') else mark = false end
    firedMarks[key] = mark
  end
  return mark
end

local function failure(name, item, problem)
  if type(problem) == 'table' and problem.err then problem = problem.err end
  return redis.error_reply(name .. ' item ' .. item .. ': ' .. tostring(problem))
end

--- Runs `one(k, a)` over every item of the call, where KEYS[k + 1..k + K] are the item's keys and
--- ARGV[a + 1..a + A] its arguments; returns the replies, one per item. One pcall covers the
--- whole loop, and the loop resumes after an item that failed: no per-item cost for isolation.
local function runBatch(name, K, A, one)
  local n = #KEYS / K
  if #KEYS == 0 or n % 1 ~= 0 or #ARGV ~= n * A then
    return redis.error_reply(name .. ': expected ' .. K .. ' keys and ' .. A .. ' arguments per item, got '
      .. #KEYS .. ' keys and ' .. #ARGV .. ' arguments')
  end
  local replies, i = {}, 1
  local function loop()
    while i <= n do
      local reply = one((i - 1) * K, (i - 1) * A)
      if reply == nil then reply = false end -- a nil would end the array of replies here
      replies[i] = reply
      i = i + 1
    end
  end
  while i <= n do
    local ok, problem = pcall(loop)
    if not ok then
      replies[i] = failure(name, i, problem)
      i = i + 1
    end
  end
  -- pcall: a key of the wrong type has already failed its items; it must not fail the others.
  for f = 1, #finishers do pcall(finishers[f]) end
  for key, below in pairs(trims) do pcall(redis.call, 'ZREMRANGEBYSCORE', key, '-inf', '(' .. below) end
  for key, ttl in pairs(expires) do pcall(redis.call, 'PEXPIRE', key, ttl) end
  return replies
end
