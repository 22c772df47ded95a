-- wrk script: realistic sales for POST /ventas, drawn from a few hundred product ids with a
-- skewed popularity, discounted prices and small quantities.
-- Pacing (wrk has no rate flag):
--   WRK_RATE=R, WRK_THREADS=T (wrk's -t): open loop at R sales/s in all. Each thread keeps a
--     schedule of send times R/T per second apart; a connection that is free takes the next
--     time in it and waits until then. When every connection is busy at a scheduled time, the
--     sale goes out late, as soon as one is free: `late_share` (sent over 1 ms late) and
--     `lag_max_ms` say how far the run kept to its schedule. wrk times a sale from its actual
--     send, so p99 is the open-loop p99 when late_share stays well under 1%.
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

request = function()
  local c = math.random(4)
  -- Skew: the square of a uniform number favours low product numbers.
  local n = 1 + math.floor(74 * math.random() ^ 2)
  local body = string.format(
    '{"categoria":"%s","producto_id":"%s-%03d","precio":%.2f,"cantidad_vendida":%d}',
    categories[c], prefixes[c], n, 5 + math.random() * 995, 1 + math.floor(-math.log(1 - math.random()) * 1.2))
  return wrk.format(nil, "/ventas", nil, body)
end

if interval > 0 then
  delay = function()
    local now = now_ms()
    if not next_slot then next_slot = now end
    local slot = next_slot
    next_slot = next_slot + interval
    paced = paced + 1
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

response = function(status)
  if status >= 200 and status < 300 then accepted = accepted + 1 end
end

done = function(summary, latency, requests)
  local acc, lt, pc, lm = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    acc = acc + t:get("accepted")
    lt = lt + t:get("late")
    pc = pc + t:get("paced")
    lm = math.max(lm, t:get("lag_max"))
  end
  io.write(string.format("RESULT requests=%d accepted=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f " ..
    "errors=%d late_share=%.5f lag_max_ms=%.1f\n",
    summary.requests, acc, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    pc > 0 and lt / pc or 0, lm))
end
