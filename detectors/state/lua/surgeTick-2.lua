-- version: 6  (registered as vigil_<verbNoun>_v<version>; bump it with any edit: test/unit/lua-versions.test.ts pins the content)
--[[ surgeTick-2: add events to their time bucket of a measure, and keep the rolling baseline
(EWMA mean and variance of the measure per full bucket). A batch script (lib/batch.lua): one
call carries any number of items, run in order; one reply per item. An item is the events of
one key and bucket in the caller's batch, added up. Each key's state is read once per call,
kept in memory while the items run and written back once.

Buckets stay open while the allowed lateness covers them: an event of an older bucket that
is still within the lateness is added to its own bucket. A bucket is folded into the baseline
once the lateness has passed it (ARGV 9), so the baseline holds every bucket's final measure
whatever the order the events came in. An event of a bucket already folded is too late: it is
not counted, and the reply says how many events were not.

Version 5: the same bucket always meets the same baseline. Bucket M is judged against the
baseline as it stood after folding exactly the buckets up to M - lag (ARGV 11, lag =
ceil(lateness / bucket) + 1): those are closed (final) whenever an event of M is within the
lateness, so neither the buckets the clock has folded by then nor an earlier bucket still
incomplete changes it. The baseline after each of the last lag + 1 folded buckets is kept (a
snapshot). And a bucket folded for good is reported with its final content and its baseline
(ARGV 12), so a caller can judge a measure that is not monotone (a ratio, a percentile, events
per source) on the complete bucket, once.

Version 6: the same replies and the same state, for less work in Redis. A key's snapshots are
parsed only when one is read, and the hash is written back by what changed (the buckets added
to, folded or opened, the snapshots made or dropped, the baseline when it moved) instead of a
DEL and a HSET of every field. A new key, and state with fields this version does not write
(version 3's), are still written whole.

Per item, 2 keys:
KEYS  1 hash: f = last bucket folded into the baseline, o = the first bucket ever folded, z =
        empty buckets folded since the last full one (at most 60 per gap count), mean / var /
        samples = the baseline of the measure, nmean / emean / nsamples = EWMA of the events
        and of the numerator events per bucket (whatever the measure); per open bucket B: n:B =
        events, e:B = numerator events, d:B = distinct HLL count (e and d only when not 0), h:B =
        histogram as JSON [bin, count, ...] (measure p95), l:B = "<time>|<event id>" of its
        latest event (the greatest time, then id); per folded bucket B of the last lag + 1: p:B =
        the baseline after folding it, "mean var samples nmean emean nsamples".
        Version 3 state (b / n / e / h:<bin>, the current bucket) keeps its baselines; its
        current bucket is dropped (taken as folded). Version 4 state has no snapshots: until
        its buckets are folded again, a bucket meets the stored baseline.
      2 HyperLogLog of the item's bucket's distinct values (measure "distinct", or the
        concentration field): one key per bucket, so a late bucket's sources count apart
and 14 arguments:
ARGV  1 bucket number of the events (event time / bucket length)
      2 measure: count | distinct | ratio | p95
      3 number of events
      4 how many of them count in the numerator (measure "ratio", or the rule's failure filter)
      5 JSON array of HLL members (the measure's field, or the concentration field), [] for none
      6 JSON array of histogram bins and their counts, flat: [bin, count, bin, count, ...] (measure p95)
      7 EWMA weight of a new bucket, 0 < alpha <= 1
      8 TTL ms of the hash, set after the batch
      9 oldest bucket still open: the bucket of (the engine's clock - the allowed lateness);
        every bucket below it is folded into the baseline first
     10 TTL ms of the bucket's HyperLogLog
     11 lag: bucket M is judged against the baseline folded through M - lag
     12 report the buckets this item folds for good that have at least this many events (0: none)
     13 event time ms of the item's latest event
     14 id of the item's latest event
At most 64 buckets stay open per key (a producer clock far ahead can't grow the hash): past
that, the oldest are folded.
Reply { measure of the item's bucket so far, its baseline mean, baseline variance (these three
        as text), full buckets in that baseline, events in the bucket, distinct HLL count,
        events not counted because their bucket was already folded (too late; 0 otherwise)
        (these four as integers), numerator events in the bucket (integer), baseline events and
        baseline numerator events per bucket (as text), full buckets in those two baselines
        (integer), the buckets this item folded for good as JSON: [[bucket, measure, mean, var,
        samples, events, distinct, numerator, nmean, emean, nsamples, latest time, latest id],
        ...] in bucket order (those with at least ARGV 12 events; [] when none) }
]]
local MAX_OPEN, MAX_EMPTY = 64, 60
local SNAP_FIELDS = { 'mean', 'var', 'samples', 'nmean', 'emean', 'nsamples' }
local BASE_FIELDS = { 'mean', 'var', 'samples', 'nmean', 'emean', 'nsamples', 'z', 'f' }
local KNOWN_FIELDS = { mean = true, var = true, samples = true, nmean = true, emean = true, nsamples = true, z = true, f = true, o = true }
local states = {}

--- A snapshot as stored: its six numbers as text, separated by spaces (as read when not parsed).
local function snapText(snap)
  if type(snap) == 'string' then return snap end
  local text = {}
  for i, field in ipairs(SNAP_FIELDS) do text[i] = tostring(snap[field]) end
  return table.concat(text, ' ')
end

--- The snapshot of bucket b, parsed at its first read; nil when there is none.
local function snapOf(state, b)
  local snap = state.snaps[b]
  if type(snap) ~= 'string' then return snap end
  local parsed, i = {}, 1
  for number in string.gmatch(snap, '%S+') do
    parsed[SNAP_FIELDS[i]] = tonumber(number)
    i = i + 1
  end
  state.snaps[b] = parsed
  return parsed
end

--- Sets (a table) or drops (nil) the snapshot of bucket b, noting it for the write-back.
local function setSnap(state, b, snap)
  state.snaps[b] = snap
  if snap == nil then
    state.snapsSet[b], state.snapsGone[b] = nil, true
  else
    state.snapsSet[b] = true
  end
end

--- The fields of one open bucket, appended to `write` as field, value pairs.
local function writeOpen(write, bucket, open)
  -- bins in order: the same histogram is stored as the same text, whatever the arrival order
  local flat, order = {}, {}
  for bin in pairs(open.bins) do order[#order + 1] = bin end
  table.sort(order)
  for _, bin in ipairs(order) do
    flat[#flat + 1] = bin
    flat[#flat + 1] = open.bins[bin]
  end
  -- n always (it marks the bucket open); e and d only when not 0: a few fields per bucket.
  for _, pair in ipairs({ { 'n', open.n }, { 'e', open.e }, { 'd', open.d } }) do
    if pair[1] == 'n' or pair[2] ~= 0 then
      write[#write + 1] = pair[1] .. ':' .. bucket
      write[#write + 1] = pair[2]
    end
  end
  if #flat > 0 then
    write[#write + 1] = 'h:' .. bucket
    write[#write + 1] = cjson.encode(flat)
  end
  if open.lt then
    write[#write + 1] = 'l:' .. bucket
    write[#write + 1] = string.format('%d', open.lt) .. '|' .. open.li
  end
end

--- The baseline's fields (and f, o when set), appended to `write` as field, value pairs.
local function writeBase(write, state)
  local base = { 'mean', tostring(state.mean), 'var', tostring(state.var), 'samples', state.samples, 'nmean', tostring(state.nmean), 'emean', tostring(state.emean), 'nsamples', state.nsamples, 'z', state.z }
  for _, pair in ipairs(base) do write[#write + 1] = pair end
  for _, field in ipairs({ 'f', 'o' }) do
    if state[field] then
      write[#write + 1] = field
      write[#write + 1] = state[field]
    end
  end
end

--- Writes back what changed in a key's state since it was read: the same fields and values a
--- whole rewrite would leave (an unchanged value keeps its stored text, which is what tostring
--- of the number read from it gives).
local function writeChanges(key, state)
  local write, drop = {}, {}
  for bucket in pairs(state.gone) do
    for _, kind in ipairs({ 'n', 'e', 'd', 'h', 'l' }) do drop[#drop + 1] = kind .. ':' .. bucket end
  end
  for bucket in pairs(state.snapsGone) do
    if state.snaps[bucket] == nil then drop[#drop + 1] = 'p:' .. bucket end
  end
  local moved = false
  for _, field in ipairs(BASE_FIELDS) do
    if state[field] ~= state.was[field] then moved = true end
  end
  if state.o ~= state.was.o then moved = true end
  if moved then writeBase(write, state) end
  for bucket in pairs(state.snapsSet) do
    local snap = state.snaps[bucket]
    if snap ~= nil then
      write[#write + 1] = 'p:' .. bucket
      write[#write + 1] = snapText(snap)
    end
  end
  for bucket in pairs(state.dirty) do
    local open = state.open[bucket]
    if open then writeOpen(write, bucket, open) end
  end
  -- Dropped first: a field written again (a bucket folded and opened again) is set after.
  if #drop > 0 then redis.call('HDEL', key, unpack(drop)) end
  if #write > 0 then redis.call('HSET', key, unpack(write)) end
end

local function stateOf(key)
  local state = states[key]
  if state then return state end
  local fields = redis.call('HGETALL', key)
  local stored = {}
  for i = 1, #fields, 2 do stored[fields[i]] = fields[i + 1] end
  state = {
    mean = tonumber(stored.mean or '0'),
    var = tonumber(stored.var or '0'),
    samples = tonumber(stored.samples or '0'),
    nmean = tonumber(stored.nmean or '0'),
    emean = tonumber(stored.emean or '0'),
    nsamples = tonumber(stored.nsamples or '0'),
    z = tonumber(stored.z or '0'),
    f = tonumber(stored.f or stored.b or ''),
    o = tonumber(stored.o or ''),
    -- open buckets: bucket number -> { n, e, d, bins = { [bin] = count }, lt, li }
    open = {},
    -- baselines after folding a bucket: bucket number -> { mean, var, samples, nmean, emean,
    -- nsamples }, or the stored text until it is read (snapOf)
    snaps = {},
    -- what changed, for the write-back: open buckets added to or opened, open buckets folded,
    -- snapshots made (or replaced) and dropped
    dirty = {}, gone = {}, snapsSet = {}, snapsGone = {},
    -- written whole: a new key, or fields this version does not write
    whole = #fields == 0 or stored.b ~= nil,
  }
  for _, field in ipairs(BASE_FIELDS) do
    if field ~= 'f' and stored[field] == nil then state.whole = true end
  end
  for field, value in pairs(stored) do
    -- Version 3 state (it has b) has no open buckets: its h:<bin> fields are no bucket.
    local kind, bucket = string.match(field, '^([nedhlp]):(%-?%d+)$')
    if not kind and not KNOWN_FIELDS[field] then state.whole = true end
    if kind and not stored.b then
      bucket = tonumber(bucket)
      if kind == 'p' then
        state.snaps[bucket] = value
      else
        local open = state.open[bucket] or { n = 0, e = 0, d = 0, bins = {} }
        state.open[bucket] = open
        if kind == 'h' then
          local flat = cjson.decode(value)
          for i = 1, #flat, 2 do open.bins[flat[i]] = flat[i + 1] end
        elseif kind == 'l' then
          local time, id = string.match(value, '^(%-?%d+)|(.*)$')
          open.lt, open.li = tonumber(time), id
        else
          open[kind] = tonumber(value)
        end
      end
    end
  end
  states[key] = state
  state.was = {}
  for _, field in ipairs(BASE_FIELDS) do state.was[field] = state[field] end
  atEnd(function()
    if not state.whole then return writeChanges(key, state) end
    redis.call('DEL', key)
    local write = {}
    writeBase(write, state)
    for bucket, snap in pairs(state.snaps) do
      write[#write + 1] = 'p:' .. bucket
      write[#write + 1] = snapText(snap)
    end
    for bucket, open in pairs(state.open) do writeOpen(write, bucket, open) end
    redis.call('HSET', key, unpack(write))
  end)
  return state
end

local function measureOf(open, kind)
  if kind == 'count' then return open.n end
  if kind == 'distinct' then return open.d end
  if open.n == 0 then return 0 end
  if kind == 'ratio' then return open.e / open.n end
  -- p95: walk the histogram bins up to 95% of the events; bin b holds values from 2^(b/4) up to
  -- 2^((b+1)/4), and the bin's lower edge is reported (up to 19% under the true value)
  local order = {}
  for bin in pairs(open.bins) do order[#order + 1] = bin end
  table.sort(order)
  local target = math.ceil(open.n * 0.95)
  local seen = 0
  for i = 1, #order do
    seen = seen + open.bins[order[i]]
    if seen >= target then return 2 ^ (order[i] / 4) end
  end
  return 0
end

-- One bucket into a baseline (`base`: mean, var, samples, nmean, emean, nsamples, z, f).
local function foldOne(base, value, n, e, alpha)
  if value ~= nil then
    if base.samples == 0 then
      base.mean, base.var = value, 0
    else
      local delta = value - base.mean
      base.mean = base.mean + alpha * delta
      base.var = (1 - alpha) * (base.var + alpha * delta * delta)
    end
    base.samples = base.samples + 1
  end
  if base.nsamples == 0 then
    base.nmean, base.emean = n, e
  else
    base.nmean = base.nmean + alpha * (n - base.nmean)
    base.emean = base.emean + alpha * (e - base.emean)
  end
  base.nsamples = base.nsamples + 1
end

local function snapshot(base)
  local snap = {}
  for _, field in ipairs(SNAP_FIELDS) do snap[field] = base[field] end
  return snap
end

local EMPTY = { mean = 0, var = 0, samples = 0, nmean = 0, emean = 0, nsamples = 0 }

-- Empty buckets base.f + 1 .. to: a count or distinct measure of zero each, nothing for a ratio
-- or percentile (no value without events); at most 60 per gap, however the gap is split between
-- calls (past that the baseline no longer moves). `keep(b)`, when given, says whether the
-- baseline after bucket b is kept as a snapshot.
local function foldEmptyTo(base, kind, to, alpha, keep)
  local b = base.f + 1
  while b <= to and base.z < MAX_EMPTY do
    foldOne(base, (kind == 'count' or kind == 'distinct') and 0 or nil, 0, 0, alpha)
    base.z, base.f = base.z + 1, b
    if keep and keep(b) then setSnap(base, b, snapshot(base)) end
    b = b + 1
  end
  if b <= to then
    base.f = to
    if keep then
      -- the baseline no longer moves: the same snapshot for every bucket kept in the rest
      for _, wanted in ipairs(keep(nil, b, to)) do setSnap(base, wanted, snapshot(base)) end
    end
  end
end

local function sortedOpen(state)
  local order = {}
  for bucket in pairs(state.open) do order[#order + 1] = bucket end
  table.sort(order)
  return order
end

-- The baseline a closed bucket M is judged against: after folding the buckets up to M - lag, from
-- its snapshot (kept while M can still be open). Before the key's first folded bucket, no
-- baseline. Version 4 state (no snapshots yet): nil (the caller takes the baseline as it stands).
local function baselineFor(state, through)
  local snap = snapOf(state, through)
  if snap then return snap end
  if state.f == nil or (state.o and through < state.o) then return EMPTY end
  return nil
end

-- Folds every bucket up to `through` (open ones by their measure, the others as empty) into
-- `base`, in bucket order: the same baseline however the folds are split. Returns the folded
-- open buckets. The first bucket ever seen has no empty buckets before it. With `lag` (the
-- state itself, folded for good), keeps the snapshots later buckets need, reports the folded
-- buckets with at least `report` events against their own baseline, and drops the snapshots no
-- open bucket can need any more.
local function foldThrough(base, state, kind, through, alpha, lag, report, closed)
  local folded = {}
  local keep
  if lag then
    keep = function(b, from, to)
      if b then return b >= through - lag or state.open[b + lag] ~= nil end
      local wanted = {}
      for x = math.max(from, through - lag), to do wanted[#wanted + 1] = x end
      for bucket in pairs(state.open) do
        local x = bucket - lag
        if x >= from and x <= to and x < through - lag then wanted[#wanted + 1] = x end
      end
      return wanted
    end
  end
  for _, bucket in ipairs(sortedOpen(state)) do
    if bucket > through then break end
    if base.f then foldEmptyTo(base, kind, bucket - 1, alpha, keep) end
    local open = state.open[bucket]
    local value = measureOf(open, kind)
    if lag and report > 0 and open.n >= report then
      local judged = baselineFor(state, bucket - lag) or base
      closed[#closed + 1] = {
        bucket, value, judged.mean, judged.var, judged.samples, open.n, open.d, open.e,
        judged.nmean, judged.emean, judged.nsamples, open.lt or 0, open.li or '',
      }
    end
    foldOne(base, value, open.n, open.e, alpha)
    if lag and not base.f then base.o = bucket end
    base.z, base.f = 0, bucket
    if keep and keep(bucket) then setSnap(base, bucket, snapshot(base)) end
    folded[#folded + 1] = bucket
  end
  if base.f and through > base.f then foldEmptyTo(base, kind, through, alpha, keep) end
  if lag and base.f then
    for bucket in pairs(base.snaps) do
      if bucket < base.f - lag then setSnap(base, bucket, nil) end
    end
  end
  return folded
end

return runBatch('surgeTick', 2, 14, function(k, a)
  local hash, hll, kind = KEYS[k + 1], KEYS[k + 2], ARGV[a + 2]
  local bucket, alpha = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 7])
  local members, bins = cjson.decode(ARGV[a + 5]), cjson.decode(ARGV[a + 6])
  local events = tonumber(ARGV[a + 3])
  local lag, report = math.min(tonumber(ARGV[a + 11]), MAX_OPEN), tonumber(ARGV[a + 12])
  local latestTime, latestId = tonumber(ARGV[a + 13]), ARGV[a + 14]
  local state = stateOf(hash)
  expireLater(hash, ARGV[a + 8])
  -- Buckets the lateness has passed: into the baseline, for good.
  local closed = {}
  for _, done in ipairs(foldThrough(state, state, kind, tonumber(ARGV[a + 9]) - 1, alpha, lag, report, closed)) do state.open[done], state.gone[done] = nil, true end
  if state.f and bucket <= state.f then
    return { '0', tostring(state.mean), tostring(state.var), state.samples, 0, 0, events, 0, tostring(state.nmean), tostring(state.emean), state.nsamples, #closed > 0 and cjson.encode(closed) or '[]' }
  end
  local open = state.open[bucket]
  if open == nil then
    open = { n = 0, e = 0, d = 0, bins = {} }
    state.open[bucket] = open
  end
  state.dirty[bucket] = true
  open.n = open.n + events
  open.e = open.e + tonumber(ARGV[a + 4])
  for i = 1, #bins, 2 do open.bins[bins[i]] = (open.bins[bins[i]] or 0) + bins[i + 1] end
  -- The bucket's latest event: the greatest time, then the greatest id, whatever the order.
  if open.lt == nil or latestTime > open.lt or (latestTime == open.lt and latestId > open.li) then
    open.lt, open.li = latestTime, latestId
  end
  local distinct = 0
  if #members > 0 then
    -- PFADD takes the members in slices: unpack has a limit on how many values it returns.
    for first = 1, #members, 500 do redis.call('PFADD', hll, unpack(members, first, math.min(first + 499, #members))) end
    expireLater(hll, ARGV[a + 10])
    -- Never below what was counted: a HyperLogLog that expired in a long pause starts again.
    open.d = math.max(open.d, redis.call('PFCOUNT', hll))
    distinct = open.d
  end
  local order = sortedOpen(state)
  if #order > MAX_OPEN then
    for _, done in ipairs(foldThrough(state, state, kind, order[#order - MAX_OPEN], alpha, lag, report, closed)) do state.open[done], state.gone[done] = nil, true end
  end
  -- The item's bucket against the baseline folded through bucket - lag: kept as a snapshot, or
  -- (a bucket ahead of the clock: an event from the future) the open buckets up to there folded
  -- in a copy as they are so far.
  local through = bucket - lag
  local base = snapOf(state, through)
  if base == nil then
    if state.f == nil or through > state.f then
      base = {}
      for _, field in ipairs(BASE_FIELDS) do base[field] = state[field] end
      foldThrough(base, state, kind, through, alpha)
    elseif state.o and through < state.o then
      base = EMPTY
    else
      base = state
    end
  end
  -- Fractions as text (Redis would truncate a number to an integer); counts as integers.
  return {
    tostring(measureOf(open, kind)), tostring(base.mean), tostring(base.var), base.samples, open.n, distinct, 0,
    open.e, tostring(base.nmean), tostring(base.emean), base.nsamples, #closed > 0 and cjson.encode(closed) or '[]',
  }
end)
