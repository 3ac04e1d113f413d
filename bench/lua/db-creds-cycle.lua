-- Dynamic PostgreSQL credentials: one cycle = GET BENCH_CREDS_PATH (issue: the server creates a
-- PostgreSQL role and a lease) then PUT /v1/sys/leases/revoke with that lease id (the server
-- runs the role's revocation statements and drops the role). BENCH_TOKEN may read the creds path
-- and update sys/leases/revoke.
--
-- Each connection alternates issue and revoke: when a connection is free, request() sends a
-- revoke for the oldest lease this thread has been issued and not yet revoked, or else a new
-- issue. An issue answered 200 queues its lease id; a revoke answered 204 completes a cycle.
-- wrk itself counts every answer >= 400 as a `status` error.
--
-- The measured window is BENCH_WINDOW seconds from the thread's start; bench/run runs wrk a few
-- seconds longer. Cycles completed in the window are the result. After the window, no new issue
-- starts: the leases still out are revoked (the drain, not counted), then the thread stops.
-- Stopping wrk in the middle of an issue instead would abandon a PostgreSQL user the server may
-- still create, which is not the server's leak. done() prints one BENCH_DB line.
local bench = require("common")
local ffi = require("ffi")

ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local creds_path = bench.env("BENCH_CREDS_PATH")
local window = tonumber(bench.env("BENCH_WINDOW"))
local revoke_path = "/v1/sys/leases/revoke"
local creds, revoke_headers, stop_at

-- Per-thread state (each wrk thread runs this file in its own Lua state).
local queue, first, last = {}, 1, 0 -- leases issued and not yet sent for revocation
local in_flight, reserved = 0, 0
cycles, drained, issued, unexpected = 0, 0, 0, 0

-- wrk adds the Host header before init(), so requests are formatted here, not at load time.
function init(args)
  creds = wrk.format("GET", creds_path, bench.headers(false))
  revoke_headers = bench.headers(true)
  stop_at = now() + window
end

local function finished()
  return now() > stop_at and first > last and in_flight == 0
end

-- Called before every request. After the window, a free connection only revokes: it reserves a
-- queued lease, or idles (a delay far beyond the run) while other connections finish.
function delay()
  if now() <= stop_at then return 0 end
  if last - first + 1 - reserved > 0 then
    reserved = reserved + 1
    return 0
  end
  if finished() then wrk.thread:stop() end
  return 86400000
end

function request()
  in_flight = in_flight + 1
  if first <= last then
    if reserved > 0 then reserved = reserved - 1 end
    local lease = queue[first]
    queue[first] = nil
    first = first + 1
    return wrk.format("PUT", revoke_path, revoke_headers, '{"lease_id":"' .. lease .. '"}')
  end
  return creds
end

function response(status, headers, body)
  in_flight = in_flight - 1
  if status == 204 then
    if now() <= stop_at then cycles = cycles + 1 else drained = drained + 1 end
  elseif status == 200 then
    local lease = body and string.match(body, '"lease_id":"([^"]+)"')
    if lease then
      issued = issued + 1
      last = last + 1
      queue[last] = lease
    else
      unexpected = unexpected + 1
    end
  elseif status < 400 then
    unexpected = unexpected + 1 -- >= 400 is already counted by wrk as a `status` error
  end
  if finished() then wrk.thread:stop() end
end

-- setup() and done() run in the main state; keep the threads to read their counters at the end.
local threads = {}
local common_setup, common_done = setup, done

function setup(thread)
  common_setup(thread)
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  common_done(summary, latency, requests)
  local total = { cycles = 0, drained = 0, issued = 0, unexpected = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(total) do total[name] = total[name] + thread:get(name) end
  end
  io.write(string.format(
    'BENCH_DB {"window_s":%s,"cycles":%d,"drained":%d,"issued":%d,"unexpected":%d}\n',
    window, total.cycles, total.drained, total.issued, total.unexpected))
end
