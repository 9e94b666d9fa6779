-- One request type of bench/load.py's mixed load, for wrk (LuaJIT).
--
-- Configured by environment variables (wrk hands script arguments to init() only,
-- but setup() needs the instance list):
--   LOAD_KIND      poll | full | evaluate | ping (the bare baseline's GET /ping)
--   LOAD_TARGETS   "127.0.0.1:8001,127.0.0.1:8002": wrk thread n connects to target
--                  n mod #targets, so run -t<#targets> for round-robin per connection
--   LOAD_SDK_KEY   the SDK key (Authorization: Bearer)
--   LOAD_FLAGS     comma-separated flag keys (evaluate picks a window of them)
--   LOAD_PER_CALL  flags per evaluate call
--   LOAD_DELAY_MS  pause before each request on a connection (0: flat out)
--
-- poll: SDK revalidation. Each thread keeps the ETag of its latest 200 and sends it
--   as If-None-Match, so a change costs one full body per connection that was in
--   flight, then 304s again, like an SDK fleet.
-- full: an SDK starting up (no If-None-Match, the whole snapshot).
-- evaluate: POST /sdk/v1/evaluate for a random user (user-1..user-20000; half of
--   them are members of the 10,000-member cohort) and plan.
--
-- done() prints one line "LOAD-RESULT {json}" with wrk's summary, its error counts,
-- the status codes seen and latency percentiles (microseconds) for bench/load.py.

local kind = os.getenv("LOAD_KIND")
local auth = "Bearer " .. (os.getenv("LOAD_SDK_KEY") or "")
local pause = tonumber(os.getenv("LOAD_DELAY_MS") or "0")
local per_call = tonumber(os.getenv("LOAD_PER_CALL") or "10")
local plans = { "free", "pro", "beta", "enterprise", "staff" }

local function split(text)
  local parts = {}
  for part in string.gmatch(text or "", "[^,]+") do
    parts[#parts + 1] = part
  end
  return parts
end

local flags = split(os.getenv("LOAD_FLAGS"))
local targets = split(os.getenv("LOAD_TARGETS"))
local threads = {}

function setup(thread)
  local target = targets[#threads % #targets + 1]
  local host, port = string.match(target, "([^:]+):(%d+)")
  thread.addr = wrk.lookup(host, port)[1]
  thread:set("id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  statuses = {}
  etag = nil
  math.randomseed(os.time() * 100 + id)
end

local function evaluate_body()
  local first = math.random(#flags)
  local picked = {}
  for i = 0, per_call - 1 do
    picked[#picked + 1] = '"' .. flags[(first + i - 1) % #flags + 1] .. '"'
  end
  return string.format(
    '{"context": {"key": "user-%d", "plan": "%s"}, "flags": [%s]}',
    math.random(20000), plans[math.random(#plans)], table.concat(picked, ", ")
  )
end

function request()
  if kind == "ping" then
    return wrk.format("GET", "/ping")
  end
  local headers = { ["Authorization"] = auth }
  if kind == "evaluate" then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", "/sdk/v1/evaluate", headers, evaluate_body())
  end
  if kind == "poll" and etag then
    headers["If-None-Match"] = etag
  end
  return wrk.format("GET", "/sdk/v1/snapshot", headers)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 and kind == "poll" then
    etag = headers["ETag"] or headers["Etag"] or etag
  end
end

if pause > 0 then
  function delay()
    return pause
  end
end

local function percentiles(latency)
  local points = {}
  for p = 1, 97 do
    points[#points + 1] = string.format('"%g": %d', p, latency:percentile(p))
  end
  for step = 0, 59 do
    local p = 97 + step * 0.05
    points[#points + 1] = string.format('"%g": %d', p, latency:percentile(p))
  end
  -- wrk's percentile(100) answers 0: the top is the maximum
  points[#points + 1] = string.format('"100": %d', latency.max)
  return table.concat(points, ", ")
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local codes = {}
  for status, count in pairs(merged) do
    codes[#codes + 1] = string.format('"%d": %d', status, count)
  end
  local e = summary.errors
  io.write(string.format(
    'LOAD-RESULT {"requests": %d, "duration_us": %d, "max_us": %d, "connect": %d, '
      .. '"read": %d, "write": %d, "status": %d, "timeout": %d, "statuses": {%s}, '
      .. '"percentiles": {%s}}\n',
    summary.requests, summary.duration, latency.max, e.connect, e.read, e.write,
    e.status, e.timeout, table.concat(codes, ", "), percentiles(latency)
  ))
end
