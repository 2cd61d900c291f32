-- version: 5  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ alertFold-12: fold one released detection into an alert, in event time. The alerter calls it
for the detections alertRelease-2 returned, in that order, so the same detections give the same
alerts at any speed and in any batch split. In turn, the detection:
  1. joins its group's open alert when its event time is within the quiet period of it
     (first - quiet .. last + quiet); a detection earlier than that is "late" and folds nowhere;
     else joins the open alert its group was linked into (KEYS[12]), within its quiet period;
  1b. else joins the open alert of an entity it names (ARGV[32]: its own group's, or the one it
     was linked into), within its quiet period, when the users agree (below);
     a late detection within an alert of 1 or 1b that already resolved in event time (the fold
     clock passed its resolve; first - quiet .. resolved) is recorded in it ("updated"): it stays
     resolved and pages nobody;
  2. else is absorbed, as evidence, into the open alert of a rule that explains it on its
     endpoint (KEYS[7]) when its event time falls in that alert (from - lateness .. last + grace,
     the grace ARGV[30], at most the quiet period): while the flood lasts, not the quiet after it;
  3. else, when its rule has opened `storm max` alerts within the storm window before it, joins
     (or opens) the rule's campaign alert (KEYS[10]);
  4. else opens a new alert for its group, resolving the group's previous one if still open.
Linking: an alert lists its entities (`entities`, group keys: its own and those linked into it).
A detection that joins or opens an alert (not absorbed, not a campaign) adds its group and the
entities it names, each linked in KEYS[12] to the alert (group and id), unless: the entity is
listed already, the alert lists ARGV[33] entities, the entity's own group has an open alert (no
merging of open incidents), or it is a user (ARGV[34] prefix) and the alert has another user.
A detection joins an alert through a link only when every user it names (its group, its
entities) is the alert's user, or the alert has none and it names at most one: one incident is
about at most one user, so a shared IP never glues two users' incidents. A link is followed only
while its alert is open and has the same id, so links need no cleanup (KEYS[12] expires).
Alert hashes reached through links are built from ARGV[31], the base of KEYS[1] (same {alerts}
hash tag, one cluster slot).
Alert times are event times (ms); `seen` is the wall-clock time of the alert's last change;
`lo` is the latest order time (ARGV[3]) of the detections that opened or joined it, which the
sweeper's quiet period runs from (version 4): a surge detection folds at its judgedAt, a lateness
after its event time, and from its event time the fold clock had already passed the quiet period
when the quiet period was shorter than that lateness.
Each change to notify is recorded in KEYS[3] in the same call (see the alerter's outbox).
KEYS[1]  hash: the group's alert (id, status, rank, base, count, suppressed, first, last, from,
         seen, resolved, revision, title, key, group, rules, names, tags, detections, explains,
         absorbed, campaign; lists as JSON arrays; a replaced alert's record also carries
         `evidence`, its evidence hash without the detection ids, as a flat JSON array)
KEYS[2]  sorted set of open alerts: member = group key, score = event time of the last detection
KEYS[3]  hash of unsent changes: field = <alert id>:<revision>:<kind>, value = JSON
         { kind, fields (JSON of the alert's fields), reason, at (wall-clock ms) }
KEYS[4]  hash, the event-time clock (see alertHold-2): `folded` moves to this order time
KEYS[5]  sorted set of open alerts: member = group key, score = wall-clock ms of the last change
KEYS[6]  hash: evidence of the group's alert (cleared when the group opens a new alert)
KEYS[7]  hash: the alert of the endpoint group that may explain this detection
KEYS[8]  hash: that alert's evidence: total, r:<rule id>, e:<entity>, d:<detection id> (counts)
KEYS[9]  sorted set: alerts the detection's rule opened: member = alert id, score = event time
KEYS[10] hash: the rule's campaign alert
KEYS[11] hash: the campaign alert's evidence
KEYS[12] hash: entity links: field = an entity's group key, value = JSON { group, id } of the alert
         it was linked into
ARGV[1]  detection id            ARGV[2]  event time ms           ARGV[3]  order time ms
ARGV[4]  wall-clock now ms       ARGV[5]  quiet period ms         ARGV[6]  allowed lateness ms
ARGV[7]  id for a new alert      ARGV[8]  rule id                 ARGV[9]  rule name
ARGV[10] severity rank (0..3)    ARGV[11] JSON array of tags      ARGV[12] title for a new alert
ARGV[13] JSON of the key         ARGV[14] group key               ARGV[15] TTL ms of the keys
ARGV[16] most detection ids kept ARGV[17] the detection's reason  ARGV[18] reason of a resolve
ARGV[19] window start ms of the detection
ARGV[20] 1 when the detection's rule explains others, else 0
ARGV[21] JSON array of the rules that explain the detection's rule ([] for none)
ARGV[22] group key of KEYS[7] ('' when the detection names no endpoint)
ARGV[23] storm guard: most alerts one rule opens within ARGV[24] ms (0: off)
ARGV[24] storm window ms
ARGV[25] group key of KEYS[10]   ARGV[26] id for a new campaign alert
ARGV[27] title for a new campaign alert   ARGV[28] JSON of the campaign alert's key
ARGV[29] the detection's entity (its key as text)
ARGV[30] absorb grace ms: how long after the explaining alert's last detection one is still absorbed
ARGV[31] the alert hash key of a group, less the group key (KEYS[1] is ARGV[31] .. ARGV[14])
ARGV[32] JSON array of the group keys of the entities the detection names besides its own, sorted
ARGV[33] most entities one alert lists
ARGV[34] the group key prefix of a user entity (`actor.userId=`)
ARGV[35] most detection ids an evidence hash keeps (`d:<id>`, for absorbing a redelivery once)
ARGV[36] most entities an evidence hash lists (`e:<entity>`); `n` counts those listed, and the
         detections of entities past it are counted in `e+` (version 5: a campaign of made-up
         keys grew the hash by two fields a detection, and the alerter reads it whole at each change)
Returns  { change: opened | escalated | updated | duplicate | absorbed | late,
           JSON of the fields of the alert it went to,
           JSON of the fields of an alert it resolved (replaced), or false,
           where: own | linked | explainer | campaign }
]]
local t = tonumber(ARGV[2])
local wall = ARGV[4]
local quiet = tonumber(ARGV[5])
local ttl = ARGV[15]
local id = ARGV[1]

local function num(key, field) return tonumber(redis.call('HGET', key, field) or '') end
local function ms(value) return string.format('%.0f', value) end
local function fieldsOf(key) return cjson.encode(redis.call('HGETALL', key)) end
local function isOpen(key) return redis.call('HGET', key, 'status') == 'open' end
local function unsent(key, kind, fields, reason)
  local change = redis.call('HGET', key, 'id') .. ':' .. redis.call('HGET', key, 'revision') .. ':' .. kind
  redis.call('HSET', KEYS[3], change, cjson.encode({ kind = kind, fields = fields, reason = reason, at = tonumber(wall) }))
  redis.call('PEXPIRE', KEYS[3], ttl)
end
local function escalated(base, count)
  local rank = base
  if count >= 10 then rank = rank + 1 end
  if count >= 100 then rank = rank + 1 end
  if rank > 3 then rank = 3 end
  return rank
end
local function appendUnique(list, value)
  for i = 1, #list do if list[i] == value then return list end end
  list[#list + 1] = value
  return list
end
local function hasDetection(key)
  local detections = redis.call('HGET', key, 'detections')
  if not detections then return false end
  for _, value in ipairs(cjson.decode(detections)) do if value == id then return true end end
  return false
end
local function index(key, group)
  redis.call('ZADD', KEYS[2], redis.call('HGET', key, 'last'), group)
  redis.call('ZADD', KEYS[5], wall, group)
  redis.call('PEXPIRE', key, ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[5], ttl)
end
local function addEvidence(evidence)
  -- Past ARGV[35] ids a redelivered detection may count twice in the totals (a campaign's count: only past its newest ids).
  if redis.call('HINCRBY', evidence, 'total', 1) <= tonumber(ARGV[35]) then redis.call('HSET', evidence, 'd:' .. id, 1) end
  redis.call('HINCRBY', evidence, 'r:' .. ARGV[8], 1)
  local entity = 'e:' .. ARGV[29]
  if redis.call('HEXISTS', evidence, entity) == 1 then
    redis.call('HINCRBY', evidence, entity, 1)
  elseif redis.call('HINCRBY', evidence, 'n', 1) <= tonumber(ARGV[36]) then
    redis.call('HSET', evidence, entity, 1)
  else
    redis.call('HINCRBY', evidence, 'n', -1)
    redis.call('HINCRBY', evidence, 'e+', 1)
  end
  redis.call('PEXPIRE', evidence, ttl)
end
-- The quiet period passed in event time: resolved at its end (last + quiet), whenever it is seen.
-- Its evidence is about to be cleared for the alert that replaces it: the record carries it.
local function resolve(key, evidence, group)
  local kept = {}
  local flat = redis.call('HGETALL', evidence)
  for i = 1, #flat, 2 do
    if string.sub(flat[i], 1, 2) ~= 'd:' then kept[#kept + 1] = flat[i]; kept[#kept + 1] = flat[i + 1] end
  end
  if #kept > 0 then redis.call('HSET', key, 'evidence', cjson.encode(kept)) end
  redis.call('HSET', key, 'status', 'resolved', 'resolved', ms(num(key, 'last') + quiet))
  redis.call('HINCRBY', key, 'revision', 1)
  redis.call('ZREM', KEYS[2], group)
  redis.call('ZREM', KEYS[5], group)
  local fields = fieldsOf(key)
  unsent(key, 'resolved', fields, ARGV[18])
  return fields
end
-- Linking (see the header).
local links = KEYS[12]
local base = ARGV[31]
local named = cjson.decode(ARGV[32])
local userPrefix = ARGV[34]
local function isUser(entity) return string.sub(entity, 1, #userPrefix) == userPrefix end
local function entitiesOf(key) return cjson.decode(redis.call('HGET', key, 'entities') or '[]') end
local function userOf(entities)
  for _, entity in ipairs(entities) do if isUser(entity) then return entity end end
  return nil
end
-- The users the detection names: its group (when a user's) and its entities.
local function namedUsers()
  local users = {}
  if isUser(ARGV[14]) then users[#users + 1] = ARGV[14] end
  for _, entity in ipairs(named) do if isUser(entity) and entity ~= ARGV[14] then users[#users + 1] = entity end end
  return users
end
-- Whether the detection may join an alert through a link: one incident is about at most one user.
local function usersAgree(key)
  local users = namedUsers()
  local user = userOf(entitiesOf(key))
  if user == nil then return #users <= 1 end
  for _, candidate in ipairs(users) do if candidate ~= user then return false end end
  return true
end
-- The alert an entity was linked into (key, group), while its group holds it (open or resolved), or nil.
local function linkedAlert(entity)
  local link = redis.call('HGET', links, entity)
  if not link then return nil end
  local target = cjson.decode(link)
  local key = base .. target.group
  if redis.call('HGET', key, 'id') == target.id then return key, target.group end
  return nil
end
-- Lists the detection's group and named entities on the alert, and links them to it.
local function link(key, group)
  if redis.call('HGET', key, 'campaign') == '1' then return end
  local entities = entitiesOf(key)
  local listed = {}
  for _, entity in ipairs(entities) do listed[entity] = true end
  local user = userOf(entities)
  local candidates = { ARGV[14] }
  for _, entity in ipairs(named) do candidates[#candidates + 1] = entity end
  local added = false
  for _, entity in ipairs(candidates) do
    local admissible = not listed[entity] and #entities < tonumber(ARGV[33])
    if admissible and isUser(entity) and user ~= nil and user ~= entity then admissible = false end
    if admissible and entity ~= group and isOpen(base .. entity) then admissible = false end
    if admissible then
      entities[#entities + 1] = entity
      listed[entity] = true
      if isUser(entity) then user = entity end
      if entity ~= group then redis.call('HSET', links, entity, cjson.encode({ group = group, id = redis.call('HGET', key, 'id') })) end
      added = true
    end
  end
  if added then
    redis.call('HSET', key, 'entities', cjson.encode(entities))
    redis.call('PEXPIRE', links, ttl)
  end
end

local function open(key, evidence, group, alertId, title, keyJson, campaign)
  local replaced = false
  if isOpen(key) then replaced = resolve(key, evidence, group) end
  redis.call('DEL', key, evidence)
  redis.call('HSET', key, 'id', alertId, 'status', 'open', 'rank', ARGV[10], 'base', ARGV[10],
    'count', 1, 'suppressed', 0, 'first', ARGV[2], 'last', ARGV[2], 'lo', ARGV[3], 'from', ms(math.min(t, tonumber(ARGV[19]))),
    'seen', wall, 'revision', 1, 'title', title, 'key', keyJson, 'group', group,
    'rules', cjson.encode({ ARGV[8] }), 'names', cjson.encode({ ARGV[9] }), 'tags', ARGV[11],
    'detections', cjson.encode({ id }), 'explains', ARGV[20], 'absorbed', 0, 'campaign', campaign,
    'entities', campaign == 1 and '[]' or cjson.encode({ group }))
  index(key, group)
  link(key, group)
  local fields = fieldsOf(key)
  unsent(key, 'opened', fields, ARGV[17])
  return fields, replaced
end
local function join(key, group)
  local detections = cjson.decode(redis.call('HGET', key, 'detections'))
  detections[#detections + 1] = id
  while #detections > tonumber(ARGV[16]) do table.remove(detections, 1) end
  local count = tonumber(redis.call('HGET', key, 'count')) + 1
  local base = math.max(tonumber(redis.call('HGET', key, 'base')), tonumber(ARGV[10]))
  local rank = escalated(base, count)
  local rules = cjson.decode(redis.call('HGET', key, 'rules'))
  local before = #rules
  rules = appendUnique(rules, ARGV[8])
  local names = appendUnique(cjson.decode(redis.call('HGET', key, 'names')), ARGV[9])
  local tags = cjson.decode(redis.call('HGET', key, 'tags'))
  for _, tag in ipairs(cjson.decode(ARGV[11])) do tags = appendUnique(tags, tag) end
  -- Escalated: a higher severity, or another rule joining the incident (a flood on top of an
  -- error surge); both are news for on-call, and may route it to more destinations.
  local change = 'updated'
  if rank > tonumber(redis.call('HGET', key, 'rank')) or #rules > before then change = 'escalated' end
  if change == 'updated' then redis.call('HINCRBY', key, 'suppressed', 1) end
  redis.call('HSET', key, 'count', count, 'base', base, 'rank', rank,
    'first', ms(math.min(num(key, 'first'), t)), 'last', ms(math.max(num(key, 'last'), t)),
    'lo', ms(math.max(num(key, 'lo') or 0, tonumber(ARGV[3]))),
    'from', ms(math.min(num(key, 'from'), tonumber(ARGV[19]), t)), 'seen', wall,
    'rules', cjson.encode(rules), 'names', cjson.encode(names), 'tags', cjson.encode(tags),
    'detections', cjson.encode(detections))
  if ARGV[20] == '1' then redis.call('HSET', key, 'explains', 1) end
  redis.call('HINCRBY', key, 'revision', 1)
  index(key, group)
  link(key, group)
  local fields = fieldsOf(key)
  if change == 'escalated' then unsent(key, change, fields, ARGV[17]) end
  return change, fields
end
local function joinable(key)
  return isOpen(key) and t >= num(key, 'first') - quiet and t <= num(key, 'last') + quiet
end
-- A late detection within an incident that already resolved in event time (the fold clock passed
-- its end): it would have joined, had it come in time.
local function recordable(key)
  local resolved = num(key, 'resolved')
  local clock = num(KEYS[4], 'folded')
  return redis.call('HGET', key, 'status') == 'resolved' and resolved ~= nil and clock ~= nil and clock >= resolved
    and t >= num(key, 'first') - quiet and t <= resolved
end
-- Records it there: count, rules and ids grow, first and last widen within the resolve time, the
-- revision moves (the document is indexed again); it stays resolved and pages nobody.
local function record(key)
  local detections = cjson.decode(redis.call('HGET', key, 'detections'))
  detections[#detections + 1] = id
  while #detections > tonumber(ARGV[16]) do table.remove(detections, 1) end
  local count = tonumber(redis.call('HGET', key, 'count')) + 1
  local highest = math.max(tonumber(redis.call('HGET', key, 'base')), tonumber(ARGV[10]))
  local rules = appendUnique(cjson.decode(redis.call('HGET', key, 'rules')), ARGV[8])
  local names = appendUnique(cjson.decode(redis.call('HGET', key, 'names')), ARGV[9])
  local tags = cjson.decode(redis.call('HGET', key, 'tags'))
  for _, tag in ipairs(cjson.decode(ARGV[11])) do tags = appendUnique(tags, tag) end
  redis.call('HSET', key, 'count', count, 'base', highest, 'rank', math.max(tonumber(redis.call('HGET', key, 'rank')), escalated(highest, count)),
    'first', ms(math.min(num(key, 'first'), t)), 'last', ms(math.max(num(key, 'last'), t)),
    'rules', cjson.encode(rules), 'names', cjson.encode(names), 'tags', cjson.encode(tags), 'detections', cjson.encode(detections))
  redis.call('HINCRBY', key, 'suppressed', 1)
  redis.call('HINCRBY', key, 'revision', 1)
  redis.call('PEXPIRE', key, ttl)
  return fieldsOf(key)
end

-- The fold clock moves forward only: the sweeper resolves what it has passed.
local folded = num(KEYS[4], 'folded')
if folded == nil or tonumber(ARGV[3]) > folded then redis.call('HSET', KEYS[4], 'folded', ARGV[3]) end
redis.call('PEXPIRE', KEYS[4], ttl)

-- 1. The group's own alert.
if hasDetection(KEYS[1]) then
  redis.call('PEXPIRE', KEYS[1], ttl)
  return { 'duplicate', fieldsOf(KEYS[1]), false, 'own' }
end
if joinable(KEYS[1]) then
  local change, fields = join(KEYS[1], ARGV[14])
  return { change, fields, false, 'own' }
end
if isOpen(KEYS[1]) and t < num(KEYS[1], 'first') - quiet then
  return { 'late', fieldsOf(KEYS[1]), false, 'own' }
end
if recordable(KEYS[1]) then return { 'updated', record(KEYS[1]), false, 'own' } end

-- 1b. The alert its group was linked into, else that of an entity it names (own or linked).
local candidates = {}
do
  local key, group = linkedAlert(ARGV[14])
  if key then candidates[#candidates + 1] = { key, group } end
  for _, entity in ipairs(named) do
    if entity ~= ARGV[14] then
      local status = redis.call('HGET', base .. entity, 'status')
      if status == 'open' or (status == 'resolved' and linkedAlert(entity) == nil) then candidates[#candidates + 1] = { base .. entity, entity }
      else
        key, group = linkedAlert(entity)
        if key then candidates[#candidates + 1] = { key, group } end
      end
    end
  end
end
for _, candidate in ipairs(candidates) do
  local key, group = candidate[1], candidate[2]
  if hasDetection(key) then
    redis.call('PEXPIRE', key, ttl)
    return { 'duplicate', fieldsOf(key), false, 'linked' }
  end
  if joinable(key) and usersAgree(key) then
    local change, fields = join(key, group)
    return { change, fields, false, 'linked' }
  end
  if recordable(key) and usersAgree(key) then return { 'updated', record(key), false, 'linked' } end
end

-- 2. Explained by an open alert on its endpoint: absorbed as evidence.
if ARGV[22] ~= '' and ARGV[22] ~= ARGV[14] and isOpen(KEYS[7]) then
  local explains = false
  local rules = cjson.decode(redis.call('HGET', KEYS[7], 'rules'))
  for _, source in ipairs(cjson.decode(ARGV[21])) do
    for _, rule in ipairs(rules) do if rule == source then explains = true end end
  end
  if explains and t >= num(KEYS[7], 'from') - tonumber(ARGV[6]) and t <= num(KEYS[7], 'last') + math.min(quiet, tonumber(ARGV[30])) then
    if redis.call('HEXISTS', KEYS[8], 'd:' .. id) == 1 then return { 'duplicate', fieldsOf(KEYS[7]), false, 'explainer' } end
    addEvidence(KEYS[8])
    redis.call('HINCRBY', KEYS[7], 'absorbed', 1)
    redis.call('HINCRBY', KEYS[7], 'revision', 1)
    redis.call('PEXPIRE', KEYS[7], ttl)
    return { 'absorbed', fieldsOf(KEYS[7]), false, 'explainer' }
  end
end

-- 3. The storm guard: past `storm max` alerts of the rule in the window, the rule's campaign.
local stormMax = tonumber(ARGV[23])
if stormMax > 0 and redis.call('ZCOUNT', KEYS[9], '(' .. ms(t - tonumber(ARGV[24])), ms(t)) >= stormMax then
  -- The evidence keeps the first ARGV[35] ids; the campaign alert its newest ARGV[16].
  if redis.call('HEXISTS', KEYS[11], 'd:' .. id) == 1 or hasDetection(KEYS[10]) then return { 'duplicate', fieldsOf(KEYS[10]), false, 'campaign' } end
  local change, fields, replaced
  if joinable(KEYS[10]) then
    change, fields = join(KEYS[10], ARGV[25])
    replaced = false
  else
    change = 'opened'
    fields, replaced = open(KEYS[10], KEYS[11], ARGV[25], ARGV[26], ARGV[27], ARGV[28], 1)
  end
  addEvidence(KEYS[11])
  return { change, fields, replaced, 'campaign' }
end

-- 4. A new alert for the group.
local fields, replaced = open(KEYS[1], KEYS[6], ARGV[14], ARGV[7], ARGV[12], ARGV[13], 0)
redis.call('ZADD', KEYS[9], ARGV[2], ARGV[7])
redis.call('ZREMRANGEBYSCORE', KEYS[9], '-inf', '(' .. ms(t - 4 * tonumber(ARGV[24])))
redis.call('PEXPIRE', KEYS[9], ttl)
return { 'opened', fields, replaced, 'own' }
