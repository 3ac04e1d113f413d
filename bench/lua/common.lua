-- Shared by every workload script (loaded with require("common"); bench/run sets LUA_PATH).
--
-- wrk runs a script once per thread, each in its own Lua state, plus once in a main state that
-- calls setup() and done(). Parameters that differ per server (token, paths, bodies) arrive as
-- BENCH_* environment variables from bench/run, so one script serves both servers.
local M = {}

function M.env(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then
    if default ~= nil then return default end
    error("bench: environment variable " .. name .. " is not set")
  end
  return value
end

-- Headers for every request: the token when the workload uses one, JSON type when there is a body.
function M.headers(with_body)
  local headers = {}
  local token = os.getenv("BENCH_TOKEN")
  if token ~= nil and token ~= "" then headers["X-Vault-Token"] = token end
  if with_body then headers["Content-Type"] = "application/json" end
  return headers
end

-- Give every thread an id, so threads start at different keys instead of hitting one key in
-- lockstep. setup() runs in the main state; thread:set() defines a global in the thread's state.
local threads_seen = 0
function setup(thread)
  thread:set("bench_thread_id", threads_seen)
  threads_seen = threads_seen + 1
end

-- One JSON line for bench/run to parse; latencies are in microseconds, as wrk records them.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end

-- The same request on every call. wrk sends a static request without calling into Lua per
-- request, so the client spends its CPU on I/O only.
function M.static(method, path, body)
  wrk.method = method
  wrk.path = path
  wrk.body = body
  for name, value in pairs(M.headers(body ~= nil)) do wrk.headers[name] = value end
end

-- Round-robin over `count` paths built from `template` (one %d for the key number). Requests
-- are formatted once in init(), so request() only picks the next one.
function M.rotate(method, template, count, body)
  local requests = {}
  local next_index = 0
  init = function(args)
    local headers = M.headers(body ~= nil)
    for i = 0, count - 1 do
      requests[i + 1] = wrk.format(method, string.format(template, i), headers, body)
    end
    -- A prime stride spreads the threads' starting keys over the key space.
    next_index = ((bench_thread_id or 0) * 7919) % count
  end
  request = function()
    next_index = next_index % count + 1
    return requests[next_index]
  end
end

-- A uniformly random one of `count` paths built from `template`, formatted per request: a
-- table of every request would not fit in memory for a million keys. Each thread seeds its
-- own generator, so threads do not walk the same sequence.
function M.random(method, template, count)
  local headers
  init = function(args)
    headers = M.headers(false)
    math.randomseed(os.time() + (bench_thread_id or 0) * 7919)
  end
  request = function()
    return wrk.format(method, string.format(template, math.random(0, count - 1)), headers)
  end
end

return M
