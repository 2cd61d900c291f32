--[[ markFired-1: remember when a rule last fired for a key, keeping the latest.
KEYS[1]  string: event time ms of the last detection
ARGV[1]  event time ms of this detection
ARGV[2]  TTL ms (the rule's window: after it, the rule may fire again anyway)
Returns  1
]]
local current = redis.call('GET', KEYS[1])
if not current or tonumber(ARGV[1]) > tonumber(current) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
