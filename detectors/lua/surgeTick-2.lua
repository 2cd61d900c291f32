--[[ surgeTick-2: add one event to the current time bucket of a measure and keep its rolling
baseline (EWMA mean and variance of the measure per full bucket).
KEYS[1]  hash: b = current bucket number, n = events in it, e = numerator events in it,
         h:<bin> = latency histogram counts, mean / var / samples = the baseline
KEYS[2]  HyperLogLog of the current bucket's distinct values (measure "distinct", or the
         concentration field)
ARGV[1]  bucket number of the event (event time / bucket length)
ARGV[2]  measure: count | distinct | ratio | p95
ARGV[3]  HLL member ("" for none)
ARGV[4]  1 when the event counts in the numerator (measure "ratio"), else 0
ARGV[5]  histogram bin of the event's value (measure "p95"), or -1
ARGV[6]  EWMA weight of a new bucket, 0 < alpha <= 1
ARGV[7]  TTL ms of both keys
Returns  { measure of the current bucket so far, baseline mean, baseline variance, full buckets
           seen, events in the current bucket, distinct HLL count, late flag (1 when the
           event belongs to an older bucket and was not counted) } as strings
]]
-- One read of the state, one write: this script runs for every event of every surge rule.
local state = redis.call('HMGET', KEYS[1], 'b', 'n', 'e', 'mean', 'var', 'samples')
local current = tonumber(state[1] or '-1')
local n = tonumber(state[2] or '0')
local e = tonumber(state[3] or '0')
local mean = tonumber(state[4] or '0')
local var = tonumber(state[5] or '0')
local samples = tonumber(state[6] or '0')
local kind = ARGV[2]
local bucket = tonumber(ARGV[1])
local alpha = tonumber(ARGV[6])

local function measureOf()
  if kind == 'count' then return n end
  if kind == 'distinct' then return redis.call('PFCOUNT', KEYS[2]) end
  if kind == 'ratio' then
    if n == 0 then return 0 end
    return e / n
  end
  -- p95: walk the histogram bins up to 95% of the events; bin b holds values from 2^(b/4) up to
  -- 2^((b+1)/4), and the bin's lower edge is reported (up to 19% under the true value)
  if n == 0 then return 0 end
  local fields = redis.call('HGETALL', KEYS[1])
  local bins = {}
  for i = 1, #fields, 2 do
    local bin = string.match(fields[i], '^h:(%-?%d+)$')
    if bin then bins[#bins + 1] = { tonumber(bin), tonumber(fields[i + 1]) } end
  end
  table.sort(bins, function(a, b) return a[1] < b[1] end)
  local target = math.ceil(n * 0.95)
  local seen = 0
  for i = 1, #bins do
    seen = seen + bins[i][2]
    if seen >= target then return 2 ^ (bins[i][1] / 4) end
  end
  return 0
end

local function fold(value)
  if samples == 0 then
    mean = value
    var = 0
  else
    local delta = value - mean
    mean = mean + alpha * delta
    var = (1 - alpha) * (var + alpha * delta * delta)
  end
  samples = samples + 1
end

local late = 0
if current == -1 then
  current = bucket
elseif bucket > current then
  fold(measureOf())
  -- Buckets with no events at all: a count or distinct measure of zero each (capped), nothing
  -- for a ratio or percentile, which have no value without events.
  if kind == 'count' or kind == 'distinct' then
    for _ = 1, math.min(bucket - current - 1, 60) do fold(0) end
  end
  if kind == 'p95' then
    local fields = redis.call('HKEYS', KEYS[1])
    for i = 1, #fields do
      if string.sub(fields[i], 1, 2) == 'h:' then redis.call('HDEL', KEYS[1], fields[i]) end
    end
  end
  redis.call('DEL', KEYS[2])
  current = bucket
  n = 0
  e = 0
elseif bucket < current then
  late = 1
end
if late == 0 then
  n = n + 1
  if ARGV[4] == '1' then e = e + 1 end
  if ARGV[3] ~= '' then redis.call('PFADD', KEYS[2], ARGV[3]) end
  if tonumber(ARGV[5]) >= 0 then redis.call('HINCRBY', KEYS[1], 'h:' .. ARGV[5], 1) end
end
redis.call('HSET', KEYS[1], 'b', current, 'n', n, 'e', e, 'mean', tostring(mean), 'var', tostring(var), 'samples', samples)
redis.call('PEXPIRE', KEYS[1], ARGV[7])
local distinct = 0
if ARGV[3] ~= '' then
  redis.call('PEXPIRE', KEYS[2], ARGV[7])
  distinct = redis.call('PFCOUNT', KEYS[2])
end
local value
if kind == 'distinct' then value = distinct else value = measureOf() end
return { tostring(value), tostring(mean), tostring(var), tostring(samples), tostring(n), tostring(distinct), tostring(late) }
