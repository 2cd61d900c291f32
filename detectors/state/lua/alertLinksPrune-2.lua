-- version: 1  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ alertLinksPrune-2: forget entity links whose alert is gone. alertFold links an entity to the
alert (group and id) it was listed on, in one hash whose TTL every new link renews: under steady
traffic the hash never expires, and every entity ever linked stayed in it. A link is followed only
while its group's alert hash holds the same id (alertFold-12's linkedAlert): once that alert expired
(its TTL after resolving) or its group opened another, the link is dead. This walks the hash a
bounded step at a time, from the cursor kept in KEYS[2], and deletes the dead links it meets; a
whole pass takes about (links / ARGV[2]) calls. It never renews the links' TTL.
KEYS[1]  hash: entity links: field = an entity's group key, value = JSON { group, id }
KEYS[2]  string: the HSCAN cursor of the pass under way (absent: start a pass)
ARGV[1]  the alert hash key of a group, less the group key (as alertFold-12's ARGV[31])
ARGV[2]  how many fields to look at (HSCAN's COUNT, a hint)
ARGV[3]  TTL ms of KEYS[2]
Returns  { fields looked at, links deleted, 1 when the pass ended (the cursor is back at 0) }
]]
local cursor = redis.call('GET', KEYS[2]) or '0'
local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', tonumber(ARGV[2]))
local fields = page[2]
local deleted = 0
for index = 1, #fields, 2 do
  local ok, target = pcall(cjson.decode, fields[index + 1])
  local alive = ok and type(target) == 'table' and type(target.group) == 'string'
    and redis.call('HGET', ARGV[1] .. target.group, 'id') == target.id
  if not alive then
    redis.call('HDEL', KEYS[1], fields[index])
    deleted = deleted + 1
  end
end
if page[1] == '0' then redis.call('DEL', KEYS[2])
else redis.call('SET', KEYS[2], page[1], 'PX', tonumber(ARGV[3])) end
return { #fields / 2, deleted, page[1] == '0' and 1 or 0 }
