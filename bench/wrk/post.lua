-- wrk script: POST one fixed JSON body and print a machine-readable summary line at the end.
--   WRK_BODY   file holding the request body (required)
--   WRK_PATH   path to POST to (default /invocations)
--   WRK_DELAY_MS  pause before each request on a connection, to pace a fixed request rate (default 0)
--   WRK_HEADER    an extra header "Name: value" (for an API key), optional
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
local body = f:read("*a")
f:close()
local path = os.getenv("WRK_PATH") or "/invocations"
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
local headers = {["Content-Type"] = "application/json"}
local extra = os.getenv("WRK_HEADER")
if extra then
  local name, value = extra:match("^([^:]+):%s*(.*)$")
  headers[name] = value
end

request = function()
  return wrk.format("POST", path, headers, body)
end

-- WRK_ARRIVALS=poisson: each pause drawn from an exponential of mean WRK_DELAY_MS, so that the connections do not
-- stay in step (equal pauses send them in bursts, one per cycle: a queue a server sees only from this client)
local poisson = os.getenv("WRK_ARRIVALS") == "poisson"
local threads = 0

setup = function(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

init = function(args)
  math.randomseed(os.time() * 1000 + (thread_id or 0))
end

if pause > 0 then
  delay = function()
    if poisson then
      return -pause * math.log(1 - math.random())
    end
    return pause
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"status_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
