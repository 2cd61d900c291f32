-- version: 1  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ alertHeldClear-2: forget that a silence held back a notification of an alert (see
alertSilence-2): it was notified since (its silences ended, or a later change went out), or it is
closed. The alert's `held` fields go only while the group's hash still holds that alert.
KEYS[1]  the alert's hash (alertKeys().alert(group))
KEYS[2]  hash, the held alerts: alert id -> group key (alertKeys().heldBySilence)
ARGV[1]  the alert's id
Returns  1 when the alert's own fields were cleared, else 0
]]
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'held', 'heldReason')
return 1
