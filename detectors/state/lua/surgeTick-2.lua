-- version: 3  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ surgeTick-2: add events to the current time bucket of a measure and keep its rolling
baseline (EWMA mean and variance of the measure per full bucket). A batch script
(lib/batch.lua): one call carries any number of items, run in order; one reply per item. An
item is the events of one key and bucket in the caller's batch, added up. Each key's state is
read once per call, kept in memory while the items run and written back once.
Per item, 2 keys:
KEYS  1 hash: b = current bucket number, n = events in it, e = numerator events in it,
        h:<bin> = latency histogram counts, mean / var / samples = the baseline;
        nmean / emean / nsamples = EWMA of the events and of the numerator events per full
        bucket (whatever the measure: a flood rule asks how the volume and the share of failing
        requests compare with their usual level; nsamples counts apart from samples, so state
        written by version 2 learns them from zero)
      2 HyperLogLog of the current bucket's distinct values (measure "distinct", or the
        concentration field)
and 8 arguments:
ARGV  1 bucket number of the events (event time / bucket length)
      2 measure: count | distinct | ratio | p95
      3 number of events
      4 how many of them count in the numerator (measure "ratio", or the rule's failure filter)
      5 JSON array of HLL members (the measure's field, or the concentration field), [] for none
      6 JSON array of histogram bins and their counts, flat: [bin, count, bin, count, ...] (measure "p95")
      7 EWMA weight of a new bucket, 0 < alpha <= 1
      8 TTL ms of both keys, set after the batch
Reply { measure of the current bucket so far, baseline mean, baseline variance (these three as
        text), full buckets seen, events in the current bucket, distinct HLL count, late flag (1
        when the event belongs to an older bucket and was not counted) (these four as integers),
        numerator events in the current bucket (integer), baseline events and baseline numerator
        events per bucket (as text), full buckets in those two baselines (integer) }
]]
local states = {}

-- The state of a hash key: read on first use in this call, written back at the end.
local function stateOf(key, kind)
  local state = states[key]
  if state then return state end
  local stored = redis.call('HMGET', key, 'b', 'n', 'e', 'mean', 'var', 'samples', 'nmean', 'emean', 'nsamples')
  state = {
    current = tonumber(stored[1] or '-1'),
    n = tonumber(stored[2] or '0'),
    e = tonumber(stored[3] or '0'),
    mean = tonumber(stored[4] or '0'),
    var = tonumber(stored[5] or '0'),
    samples = tonumber(stored[6] or '0'),
    nmean = tonumber(stored[7] or '0'),
    emean = tonumber(stored[8] or '0'),
    nsamples = tonumber(stored[9] or '0'),
    -- distinct count of the HLL, read when first needed and after each PFADD that changed it
    distinct = nil,
  }
  if kind == 'p95' then
    -- histogram bins: bin number -> count; `stored` remembers which fields Redis holds
    state.bins, state.stored = {}, {}
    local fields = redis.call('HGETALL', key)
    for i = 1, #fields, 2 do
      local bin = string.match(fields[i], '^h:(%-?%d+)$')
      if bin then
        state.bins[tonumber(bin)] = tonumber(fields[i + 1])
        state.stored[fields[i]] = true
      end
    end
  end
  states[key] = state
  atEnd(function()
    local write = { 'b', state.current, 'n', state.n, 'e', state.e, 'mean', tostring(state.mean), 'var', tostring(state.var), 'samples', state.samples, 'nmean', tostring(state.nmean), 'emean', tostring(state.emean), 'nsamples', state.nsamples }
    if state.bins then
      for field in pairs(state.stored) do
        if state.bins[tonumber(string.sub(field, 3))] == nil then redis.call('HDEL', key, field) end
      end
      for bin, count in pairs(state.bins) do
        write[#write + 1] = 'h:' .. bin
        write[#write + 1] = count
      end
    end
    redis.call('HSET', key, unpack(write))
  end)
  return state
end

local function distinctOf(state, hll)
  if state.distinct == nil then state.distinct = redis.call('PFCOUNT', hll) end
  return state.distinct
end

local function measureOf(state, kind, hll)
  if kind == 'count' then return state.n end
  if kind == 'distinct' then return distinctOf(state, hll) end
  if state.n == 0 then return 0 end
  if kind == 'ratio' then return state.e / state.n end
  -- p95: walk the histogram bins up to 95% of the events; bin b holds values from 2^(b/4) up to
  -- 2^((b+1)/4), and the bin's lower edge is reported (up to 19% under the true value)
  local order = {}
  for bin in pairs(state.bins) do order[#order + 1] = bin end
  table.sort(order)
  local target = math.ceil(state.n * 0.95)
  local seen = 0
  for i = 1, #order do
    seen = seen + state.bins[order[i]]
    if seen >= target then return 2 ^ (order[i] / 4) end
  end
  return 0
end

local function fold(state, value, alpha)
  if state.samples == 0 then
    state.mean = value
    state.var = 0
  else
    local delta = value - state.mean
    state.mean = state.mean + alpha * delta
    state.var = (1 - alpha) * (state.var + alpha * delta * delta)
  end
  state.samples = state.samples + 1
end

-- The events and numerator events of a full bucket, into their own baselines.
local function foldVolume(state, n, e, alpha)
  if state.nsamples == 0 then
    state.nmean, state.emean = n, e
  else
    state.nmean = state.nmean + alpha * (n - state.nmean)
    state.emean = state.emean + alpha * (e - state.emean)
  end
  state.nsamples = state.nsamples + 1
end

-- PFADD takes the members in slices: unpack has a limit on how many values it returns.
local function addMembers(hll, members)
  local changed = 0
  for first = 1, #members, 500 do
    changed = math.max(changed, redis.call('PFADD', hll, unpack(members, first, math.min(first + 499, #members))))
  end
  return changed
end

return runBatch('surgeTick', 2, 8, function(k, a)
  local hash, hll, kind = KEYS[k + 1], KEYS[k + 2], ARGV[a + 2]
  local bucket, alpha, ttl = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 7]), ARGV[a + 8]
  local members, bins = cjson.decode(ARGV[a + 5]), cjson.decode(ARGV[a + 6])
  local state = stateOf(hash, kind)
  expireLater(hash, ttl)
  local late = 0
  if state.current == -1 then
    state.current = bucket
  elseif bucket > state.current then
    fold(state, measureOf(state, kind, hll), alpha)
    foldVolume(state, state.n, state.e, alpha)
    -- Buckets with no events at all: a count or distinct measure of zero each (capped), nothing
    -- for a ratio or percentile, which have no value without events.
    if kind == 'count' or kind == 'distinct' then
      for _ = 1, math.min(bucket - state.current - 1, 60) do fold(state, 0, alpha) end
    end
    for _ = 1, math.min(bucket - state.current - 1, 60) do foldVolume(state, 0, 0, alpha) end
    if state.bins then state.bins = {} end
    redis.call('DEL', hll)
    state.distinct = 0
    state.current = bucket
    state.n = 0
    state.e = 0
  elseif bucket < state.current then
    late = 1
  end
  if late == 0 then
    state.n = state.n + tonumber(ARGV[a + 3])
    state.e = state.e + tonumber(ARGV[a + 4])
    if #members > 0 and addMembers(hll, members) == 1 then state.distinct = nil end
    if state.bins then
      for i = 1, #bins, 2 do state.bins[bins[i]] = (state.bins[bins[i]] or 0) + bins[i + 1] end
    end
  end
  local distinct = 0
  if #members > 0 then
    expireLater(hll, ttl)
    distinct = distinctOf(state, hll)
  end
  local value = distinct
  if kind ~= 'distinct' then value = measureOf(state, kind, hll) end
  -- Fractions as text (Redis would truncate a number to an integer); counts as integers.
  return {
    tostring(value), tostring(state.mean), tostring(state.var), state.samples, state.n, distinct, late,
    state.e, tostring(state.nmean), tostring(state.emean), state.nsamples,
  }
end)
