-- version: 1  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ alertHeldClaim-2: take held alerts (see alertSilence-2) to notify them, one instance alone,
for a while. The alert stays on the index while claimed: a process that dies before its
notification is handed over leaves a claim that ends, and the next sweep after that takes it
again (at least once; the notifier drops a delivery id it has seen). A claim ends when it is
cleared (alertHeldClear-3: notified or closed), given back (HDEL, a failed notification) or at
its end. Times are Redis's own clock: instances' clocks may differ.
KEYS[1]  hash, the held alerts: alert id -> group key (alertKeys().heldBySilence)
KEYS[2]  hash, the claims: alert id -> the claim's end, Redis time in ms (alertKeys().heldClaims)
ARGV[1]  how long a claim lasts, ms
ARGV[2]  TTL ms of the claims hash
ARGV[3.] alert ids
Returns  the ids taken (on the index, and not under a claim that has not ended)
]]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ends = now + tonumber(ARGV[1])
local taken = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 1 then
    local claim = tonumber(redis.call('HGET', KEYS[2], id) or '')
    if claim == nil or claim <= now then
      redis.call('HSET', KEYS[2], id, string.format('%d', ends))
      taken[#taken + 1] = id
    end
  end
end
if #taken > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return taken
