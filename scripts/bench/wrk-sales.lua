-- wrk script: realistic sales for POST /ventas, drawn from a few hundred product ids with a
-- skewed popularity, discounted prices and small quantities. Optional pacing: WRK_DELAY_MS
-- per request per connection (wrk has no rate flag; connections x 1000/delay = offered rate).
local categories = {"Electronica", "Ropa", "Hogar", "Belleza"}
local prefixes = {"ELE", "ROP", "HOG", "BEL"}
local delay_ms = tonumber(os.getenv("WRK_DELAY_MS") or "0")
local threads = {}
accepted = 0

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

if delay_ms > 0 then
  delay = function() return delay_ms end
end

-- Each wrk thread has its own Lua state: count there, add up in done().
setup = function(thread) table.insert(threads, thread) end

response = function(status)
  if status >= 200 and status < 300 then accepted = accepted + 1 end
end

done = function(summary, latency, requests)
  local accepted = 0
  for _, t in ipairs(threads) do accepted = accepted + t:get("accepted") end
  io.write(string.format("RESULT requests=%d accepted=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n",
    summary.requests, accepted, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
