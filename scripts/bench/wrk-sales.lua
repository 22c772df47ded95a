-- wrk script: realistic sales for POST /ventas, drawn from a few hundred product ids with a
-- skewed popularity, discounted prices and small quantities.
-- Pacing (wrk has no rate flag):
--   WRK_RATE=R, WRK_THREADS=T (wrk's -t): open loop at R sales/s in all. Each thread keeps a
--     schedule of send times R/T per second apart; a connection that is free takes the next
--     time in it and waits until then. When every connection is busy at a scheduled time, the
--     sale goes out late, as soon as one is free: `late_share` (sent over 1 ms late) and
--     `lag_max_ms` say how far the run kept to its schedule. wrk times a sale from its actual
--     send (p50_ms, p99_ms), which leaves out a late sale's wait to be sent. So each sale also
--     carries an X-Request-Id, which our api sends back, and is timed from when it was due:
--     `due_p50_ms`, `due_p99_ms`, `due_max_ms` over `due_timed` sales (0 against a server
--     that does not send the id back), the open-loop latency however late wrk was.
--   WRK_DELAY_MS=D: closed loop, each connection waits D ms after an answer.
--   neither: closed loop at full speed (saturation).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } sp_timespec;
int clock_gettime(int clock, sp_timespec *ts);
]]
local ts = ffi.new("sp_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local categories = {"Electronica", "Ropa", "Hogar", "Belleza"}
local prefixes = {"ELE", "ROP", "HOG", "BEL"}
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
local rate = tonumber(os.getenv("WRK_RATE") or "0")
local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
local interval = rate > 0 and nthreads * 1000 / rate or 0
local next_slot = nil
local threads = {}
accepted = 0
late = 0
paced = 0
lag_max = 0

math.randomseed(os.time())

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

-- Paced mode: the slots delay() booked, oldest first; wrk's timers fire in slot order (to its
-- 1 ms rounding), so the next request sent takes the oldest booked slot.
local booked, booked_first, booked_last = {}, 1, 0
local due = {}  -- X-Request-Id -> when that sale was due (ms)
local sent = 0
local paced_headers = {["Content-Type"] = "application/json"}
due_hist = {}   -- bucket (see due_bucket) -> sales
due_timed = 0
due_max = 0

-- 0.1 ms buckets below 100 ms, 1 ms buckets up to 10 s, one above.
local function due_bucket(ms)
  if ms < 100 then return math.floor(ms * 10) end
  if ms < 10000 then return 1000 + math.floor(ms - 100) end
  return 10900
end
local function due_bucket_top(b)
  if b < 1000 then return (b + 1) / 10 end
  return b - 1000 + 101
end

request = function()
  local c = math.random(4)
  -- Skew: the square of a uniform number favours low product numbers.
  local n = 1 + math.floor(74 * math.random() ^ 2)
  local body = string.format(
    '{"categoria":"%s","producto_id":"%s-%03d","precio":%.2f,"cantidad_vendida":%d}',
    categories[c], prefixes[c], n, 5 + math.random() * 995, 1 + math.floor(-math.log(1 - math.random()) * 1.2))
  if interval == 0 then return wrk.format(nil, "/ventas", nil, body) end
  -- A connection's first sale has no booked slot: it is due now. One sent a moment early
  -- (timer rounding) is timed from its send.
  local now = now_ms()
  local slot = now
  if booked_first <= booked_last then
    slot = math.min(booked[booked_first], now)
    booked[booked_first] = nil
    booked_first = booked_first + 1
  end
  sent = sent + 1
  due[sent] = slot
  paced_headers["X-Request-Id"] = sent
  return wrk.format(nil, "/ventas", paced_headers, body)
end

if interval > 0 then
  delay = function()
    local now = now_ms()
    if not next_slot then next_slot = now end
    local slot = next_slot
    next_slot = next_slot + interval
    paced = paced + 1
    booked_last = booked_last + 1
    booked[booked_last] = slot
    local wait = slot - now
    if wait < -1 then
      late = late + 1
      if -wait > lag_max then lag_max = -wait end
    end
    return wait > 0 and math.floor(wait + 0.5) or 0
  end
elseif delay_ms > 0 then
  delay = function() return delay_ms end
end

-- Each wrk thread has its own Lua state: count there, add up in done().
setup = function(thread) table.insert(threads, thread) end

response = function(status, headers)
  if status >= 200 and status < 300 then accepted = accepted + 1 end
  if interval == 0 then return end
  local id = tonumber(headers["X-Request-Id"])
  local t0 = id and due[id]
  if not t0 then return end
  due[id] = nil
  local ms = now_ms() - t0
  local b = due_bucket(ms)
  due_hist[b] = (due_hist[b] or 0) + 1
  due_timed = due_timed + 1
  if ms > due_max then due_max = ms end
end

-- The q-quantile (0..1) of the merged due-time histogram, as its bucket's upper edge (ms).
local function due_quantile(hist, total, q)
  local keys = {}
  for b in pairs(hist) do keys[#keys + 1] = b end
  table.sort(keys)
  local seen = 0
  for _, b in ipairs(keys) do
    seen = seen + hist[b]
    if seen >= q * total then return due_bucket_top(b) end
  end
  return 0
end

done = function(summary, latency, requests)
  local acc, lt, pc, lm, timed, dmax, hist = 0, 0, 0, 0, 0, 0, {}
  for _, t in ipairs(threads) do
    acc = acc + t:get("accepted")
    lt = lt + t:get("late")
    pc = pc + t:get("paced")
    lm = math.max(lm, t:get("lag_max"))
    timed = timed + t:get("due_timed")
    dmax = math.max(dmax, t:get("due_max"))
    for b, n in pairs(t:get("due_hist")) do hist[b] = (hist[b] or 0) + n end
  end
  io.write(string.format("RESULT requests=%d accepted=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
    "errors=%d late_share=%.5f lag_max_ms=%.1f due_timed=%d due_p50_ms=%.1f due_p99_ms=%.1f due_max_ms=%.1f\n",
    summary.requests, acc, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    pc > 0 and lt / pc or 0, lm, timed, due_quantile(hist, timed, 0.5), due_quantile(hist, timed, 0.99),
    dmax))
end
