-- apply.lua - the consumer's one script: applies a batch of Kafka records to the dashboard's
-- aggregates and stores the next offset of each partition, atomically (workers/consumer/store.c
-- loads it once and calls it with EVALSHA; embedded into the program at build time).
--
-- Idempotent: a record is applied only if its offset is at or past the next offset stored for
-- its partition, so a retried or stale batch changes nothing. If a partition's stored next
-- offset is below what the caller believes (Valkey lost writes), nothing is applied and the
-- partitions are returned for the caller to rewind.
--
-- Every key it touches is in KEYS:
--   KEYS[1..11]  total, reports, sum_units, sum_price, avg_units, avg_price, max_price,
--                min_price, units, offsets, series_last (common/sales_keys.h)
--   KEYS[12..15] the units zset of each category, in the order of the names in ARGV[8..11]
--   KEYS[16..]   the price series of each product of the batch; a record names its own
-- ARGV: topic, ttl (s, 0 = never), maxlen, every (ms, 0 = a point per sale), the field names
--   precio, producto_id, ts, the 4 category names, the number of partitions P; then P pairs
--   (partition, next offset the caller believes stored, -1 unknown); then 8 per record:
--   partition, offset, category ('' = offset only: not a sale), product, price, units,
--   time (unix ms), index of its series key (1 = KEYS[16]).
-- Returns {1, applied, duplicates, skipped}, or {0, partition, stored, ...} when behind.
--
-- Per batch each category's count and sums are read once and written once and each product's
-- units added once; only the price series may get an XADD per sale. Floats are written with
-- the shortest text that reads back as the same double.

local K_TOTAL, K_REPORTS, K_SUNITS, K_SPRICE, K_AUNITS, K_APRICE, K_MAX, K_MIN, K_UNITS,
      K_OFFS, K_LAST = unpack(KEYS, 1, 11)
local SERIES0 = 15
local topic, ttl, maxlen, every = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local F_PRICE, F_PRODUCT, F_TS = ARGV[5], ARGV[6], ARGV[7]
local catkey = {}
for c = 1, 4 do catkey[ARGV[7 + c]] = KEYS[11 + c] end
local n, i = #ARGV, 13

local function fmt(x)
  local s = string.format('%.15g', x)
  if tonumber(s) ~= x then s = string.format('%.17g', x) end
  return s
end
local function num(v) if v then return tonumber(v) end return nil end

-- Stored next offset per partition; a caller that applied more than Valkey holds gets the
-- partitions back (nothing applied) and rewinds.
local nxt, dirty, behind = {}, {}, {0}
for _ = 1, tonumber(ARGV[12]) do
  local p, want = ARGV[i], tonumber(ARGV[i + 1])
  local have = num(redis.call('HGET', K_OFFS, topic .. ':' .. p)) or -1
  if have < want then behind[#behind + 1] = tonumber(p); behind[#behind + 1] = have end
  nxt[p] = have
  i = i + 2
end
if #behind > 1 then return behind end

-- Pass 1: the offset check, and the batch's sums in Lua tables.
local dups, skipped, sales = 0, 0, {}
local cnt, su, sp, units, cunits = {}, {}, {}, {}, {}
local maxp, maxs, maxid, minp, mins, minid
while i <= n do
  local p, off, cat = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  if off < nxt[p] then
    dups = dups + 1
  else
    nxt[p] = off + 1; dirty[p] = true
    if cat == '' then
      skipped = skipped + 1
    else
      local id, ps, u = ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5])
      local price = tonumber(ps)
      sales[#sales + 1] = i
      cnt[cat] = (cnt[cat] or 0) + 1
      su[cat] = (su[cat] or 0) + u
      sp[cat] = (sp[cat] or 0) + price
      units[id] = (units[id] or 0) + u
      local cu = cunits[cat]
      if not cu then cu = {}; cunits[cat] = cu end
      cu[id] = (cu[id] or 0) + u
      if not maxp or price > maxp then maxp, maxs, maxid = price, ps, id end
      if not minp or price < minp then minp, mins, minid = price, ps, id end
    end
  end
  i = i + 8
end

local function write_totals()
  redis.call('INCRBY', K_TOTAL, #sales)
  for cat, c in pairs(cnt) do
    local total = redis.call('HINCRBY', K_REPORTS, cat, c)
    local sumu = redis.call('HINCRBY', K_SUNITS, cat, string.format('%d', su[cat]))
    local sump = (num(redis.call('HGET', K_SPRICE, cat)) or 0) + sp[cat]
    redis.call('HSET', K_SPRICE, cat, fmt(sump))
    redis.call('HSET', K_AUNITS, cat, fmt(sumu / total))
    redis.call('HSET', K_APRICE, cat, fmt(sump / total))
    for id, u in pairs(cunits[cat]) do
      redis.call('ZINCRBY', catkey[cat], string.format('%d', u), id)
    end
  end
  for id, u in pairs(units) do redis.call('ZINCRBY', K_UNITS, string.format('%d', u), id) end
  local m = num(redis.call('HGET', K_MAX, F_PRICE))
  if not m or maxp > m then redis.call('HSET', K_MAX, F_PRICE, maxs, F_PRODUCT, maxid) end
  m = num(redis.call('HGET', K_MIN, F_PRICE))
  if not m or minp < m then redis.call('HSET', K_MIN, F_PRICE, mins, F_PRODUCT, minid) end
end

-- The start of the interval of each product's last point (-1: none), for `every` > 0.
local function last_points()
  local ids, last = {}, {}
  for _, j in ipairs(sales) do
    local id = ARGV[j + 3]
    if not last[id] then last[id] = -1; ids[#ids + 1] = id end
  end
  for k = 1, #ids, 500 do
    local chunk = {}
    for m = k, math.min(k + 499, #ids) do chunk[#chunk + 1] = ids[m] end
    local got = redis.call('HMGET', K_LAST, unpack(chunk))
    for m = 1, #chunk do last[chunk[m]] = tonumber(got[m]) or -1 end
  end
  return last
end

-- Pass 2: a point per sale, or (every > 0) per product and interval of `every` ms.
local function write_series()
  local last = every > 0 and last_points() or nil
  local wrote = {}
  for _, j in ipairs(sales) do
    local id, ts = ARGV[j + 3], tonumber(ARGV[j + 6])
    local key = KEYS[SERIES0 + tonumber(ARGV[j + 7])]
    local start = every > 0 and ts - ts % every or nil
    if not last or start > last[id] then
      redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', F_TS, ARGV[j + 6], F_PRICE, ARGV[j + 4])
      wrote[id] = key
      if last then last[id] = start end
    end
  end
  for id, key in pairs(wrote) do
    if last then redis.call('HSET', K_LAST, id, string.format('%d', last[id])) end
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
  end
  if last and ttl > 0 and next(wrote) then redis.call('EXPIRE', K_LAST, ttl) end
end

if #sales > 0 then
  write_totals()
  write_series()
end
for p in pairs(dirty) do
  redis.call('HSET', K_OFFS, topic .. ':' .. p, string.format('%d', nxt[p]))
end
return {1, #sales, dups, skipped}
