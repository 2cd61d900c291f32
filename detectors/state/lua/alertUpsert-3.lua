-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ alertUpsert-3: fold one detection into the open alert of its group, or open a new alert.
All alert keys share the {alerts} hash tag: alerts are few, and one slot keeps the open-alerts
index, the unsent changes and every alert together (cluster-safe).
Each change to notify (opened, escalated, and the resolve of a replaced alert) is also recorded
in KEYS[3] in the same atomic call, so it cannot be lost between this call and the notification
outbox: the alerter deletes the record once the outbox holds the change, and writes what is left
again after a crash (a redone batch only finds duplicates here).
KEYS[1]  hash: the group's alert (id, status, rank, base, count, suppressed, first, last,
         revision, title, key, rules, names, tags, detections; lists as JSON arrays)
KEYS[2]  sorted set of open alerts: member = group key, score = last detection ms
KEYS[3]  hash of unsent changes: field = <alert id>:<revision>:<kind>, value = JSON
         { kind, fields (JSON of the alert's fields), reason, at (now ms) }
ARGV[1]  detection id
ARGV[2]  now ms
ARGV[3]  window ms: a detection within it of the open alert's last one joins the alert
ARGV[4]  id for a new alert
ARGV[5]  rule id
ARGV[6]  rule name
ARGV[7]  severity rank of the detection (0 low .. 3 critical)
ARGV[8]  JSON array of the detection's tags
ARGV[9]  title for a new alert
ARGV[10] JSON object of the group's key
ARGV[11] group key (member of KEYS[2])
ARGV[12] TTL ms of KEYS[1]
ARGV[13] most detection ids kept
ARGV[14] reason of an opened or escalated change (the detection's)
ARGV[15] reason of a replaced alert's resolve
Returns  { change: opened | escalated (severity rose or a new rule joined) | updated | duplicate,
           JSON of the alert's fields, and for "opened" over an alert still open (its quiet
           period passed but no sweep resolved it yet) the JSON of that alert, now resolved }
]]
local now = tonumber(ARGV[2])
local function escalated(base, count)
  local rank = base
  if count >= 10 then rank = rank + 1 end
  if count >= 100 then rank = rank + 1 end
  if rank > 3 then rank = 3 end
  return rank
end
local function unsent(kind, fields, reason)
  local id = redis.call('HGET', KEYS[1], 'id') .. ':' .. redis.call('HGET', KEYS[1], 'revision') .. ':' .. kind
  redis.call('HSET', KEYS[3], id, cjson.encode({ kind = kind, fields = fields, reason = reason, at = now }))
  redis.call('PEXPIRE', KEYS[3], ARGV[12])
end
local function appendUnique(list, value)
  for i = 1, #list do if list[i] == value then return list end end
  list[#list + 1] = value
  return list
end

local status = redis.call('HGET', KEYS[1], 'status')
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local change
if status == 'open' and now - last <= tonumber(ARGV[3]) then
  local detections = cjson.decode(redis.call('HGET', KEYS[1], 'detections'))
  for i = 1, #detections do
    if detections[i] == ARGV[1] then
      redis.call('PEXPIRE', KEYS[1], ARGV[12])
      return { 'duplicate', cjson.encode(redis.call('HGETALL', KEYS[1])) }
    end
  end
  detections[#detections + 1] = ARGV[1]
  while #detections > tonumber(ARGV[13]) do table.remove(detections, 1) end
  local count = tonumber(redis.call('HGET', KEYS[1], 'count')) + 1
  local base = math.max(tonumber(redis.call('HGET', KEYS[1], 'base')), tonumber(ARGV[7]))
  local rank = escalated(base, count)
  local rules = cjson.decode(redis.call('HGET', KEYS[1], 'rules'))
  local before = #rules
  rules = appendUnique(rules, ARGV[5])
  local newRule = #rules > before
  local names = appendUnique(cjson.decode(redis.call('HGET', KEYS[1], 'names')), ARGV[6])
  local tags = cjson.decode(redis.call('HGET', KEYS[1], 'tags'))
  for _, tag in ipairs(cjson.decode(ARGV[8])) do tags = appendUnique(tags, tag) end
  -- Escalated: a higher severity, or another rule joining the incident (a flood on top of an
  -- error surge); both are news for on-call, and may route it to more destinations.
  if rank > tonumber(redis.call('HGET', KEYS[1], 'rank')) or newRule then
    change = 'escalated'
  else
    change = 'updated'
    redis.call('HINCRBY', KEYS[1], 'suppressed', 1)
  end
  redis.call('HSET', KEYS[1], 'count', count, 'base', base, 'rank', rank, 'last', ARGV[2],
    'rules', cjson.encode(rules), 'names', cjson.encode(names), 'tags', cjson.encode(tags),
    'detections', cjson.encode(detections))
  redis.call('HINCRBY', KEYS[1], 'revision', 1)
else
  change = 'opened'
  local replaced = false
  if status == 'open' then
    -- Resolve the alert this one replaces, so it is never left open (and paged) for good.
    redis.call('HSET', KEYS[1], 'status', 'resolved', 'resolved', ARGV[2])
    redis.call('HINCRBY', KEYS[1], 'revision', 1)
    replaced = cjson.encode(redis.call('HGETALL', KEYS[1]))
    unsent('resolved', replaced, ARGV[15])
  end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'id', ARGV[4], 'status', 'open', 'rank', ARGV[7], 'base', ARGV[7],
    'count', 1, 'suppressed', 0, 'first', ARGV[2], 'last', ARGV[2], 'revision', 1,
    'title', ARGV[9], 'key', ARGV[10], 'group', ARGV[11],
    'rules', cjson.encode({ ARGV[5] }), 'names', cjson.encode({ ARGV[6] }), 'tags', ARGV[8],
    'detections', cjson.encode({ ARGV[1] }))
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[11])
  redis.call('PEXPIRE', KEYS[1], ARGV[12])
  redis.call('PEXPIRE', KEYS[2], ARGV[12])
  local fields = cjson.encode(redis.call('HGETALL', KEYS[1]))
  unsent(change, fields, ARGV[14])
  return { change, fields, replaced }
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[11])
redis.call('PEXPIRE', KEYS[1], ARGV[12])
-- The open-alerts index lives as long as its newest alert could.
redis.call('PEXPIRE', KEYS[2], ARGV[12])
local fields = cjson.encode(redis.call('HGETALL', KEYS[1]))
if change == 'escalated' then unsent(change, fields, ARGV[14]) end
return { change, fields }
