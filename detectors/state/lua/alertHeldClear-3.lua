-- version: 2  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ alertHeldClear-3: forget that a silence held back a notification of an alert (see
alertSilence-2): it was notified since (its silences ended, or a later change went out), or it is
closed. Its claim (alertHeldClaim-2) goes with it. Given the hold it notified (`heldSeq`), a hold
recorded since (a new silence matched a later change, another instance's) is kept: only the claim
goes, and the next sweep sees it. The alert's `held` fields go only while the group's hash still
holds that alert.
KEYS[1]  the alert's hash (alertKeys().alert(group))
KEYS[2]  hash, the held alerts: alert id -> group key (alertKeys().heldBySilence)
KEYS[3]  hash, the claims: alert id -> the claim's end, Redis time in ms (alertKeys().heldClaims)
ARGV[1]  the alert's id
ARGV[2]  the `heldSeq` notified; empty to forget whatever is held (a closed alert)
Returns  1 when the alert's own fields were cleared, 2 when a later hold was kept, else 0
]]
redis.call('HDEL', KEYS[3], ARGV[1])
local holds = redis.call('HGET', KEYS[1], 'id') == ARGV[1]
if holds and ARGV[2] ~= '' and (redis.call('HGET', KEYS[1], 'heldSeq') or '') ~= ARGV[2] then return 2 end
redis.call('HDEL', KEYS[2], ARGV[1])
if not holds then return 0 end
redis.call('HDEL', KEYS[1], 'held', 'heldReason', 'heldSeq')
return 1
