-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ alertSilence-2: record on an alert the silences that held back a notification of it (its
opening or an escalation not sent, its resolve sent only where it was announced), so that its
document says so (`kibana.alert.maintenance_window_ids`). An opening or escalation held back is
also recorded as `held` (`opened` wins: a destination never told must hear the opening), with
its reason, and the alert put in the index of held alerts: once no silence matches it and it is
still open, the alerter notifies it (see alertHeldClaim-2 and alertHeldClear-3). Each hold
recorded counts up the alert's `heldSeq`: a release clears only the hold it notified, never one
recorded since. Only while the group's hash still
holds that alert: a later alert of the group (its hash is cleared when it opens) is not marked.
KEYS[1]  the alert's hash (alertKeys().alert(group))
KEYS[2]  hash, the held alerts: alert id -> group key (alertKeys().heldBySilence)
ARGV[1]  the alert's id
ARGV[2]  the most silence ids an alert keeps (the oldest stay)
ARGV[3]  the kind held back, `opened` or `escalated`; empty for a resolve (nothing held)
ARGV[4]  the held change's reason (the detection's sentence)
ARGV[5]  the group key
ARGV[6]  TTL ms of the index
ARGV[7.] silence ids
Returns  the alert's silence ids after the call, as JSON, or false when the hash holds another alert
]]
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return false end
local ids = cjson.decode(redis.call('HGET', KEYS[1], 'silenced') or '[]')
local seen = {}
for _, id in ipairs(ids) do seen[id] = true end
local most = tonumber(ARGV[2])
for i = 7, #ARGV do
  if not seen[ARGV[i]] and #ids < most then
    ids[#ids + 1] = ARGV[i]
    seen[ARGV[i]] = true
  end
end
local encoded = cjson.encode(ids)
redis.call('HSET', KEYS[1], 'silenced', encoded)
if ARGV[3] ~= '' then
  local held = ARGV[3]
  if redis.call('HGET', KEYS[1], 'held') == 'opened' then held = 'opened' end
  redis.call('HSET', KEYS[1], 'held', held, 'heldReason', ARGV[4])
  redis.call('HINCRBY', KEYS[1], 'heldSeq', 1)
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
return encoded
