-- get.lua: wrk script for `make bench`: GET /v1/tasks/{id}, the ids taken in
-- turn from the file BENCH_IDS (one a line); or, with BENCH_LIST set, the
-- list GET /v1/tasks?<BENCH_LIST>. done() prints what post.lua's does.
local ids = {}
local list = os.getenv("BENCH_LIST")
if not list or list == "" then
  list = nil
  for line in io.lines(os.getenv("BENCH_IDS")) do ids[#ids + 1] = line end
end
local i = 0
local auth = os.getenv("BENCH_AUTH")

request = function()
  local h = {}
  if auth and auth ~= "" then h["Authorization"] = auth end
  if list then return wrk.format("GET", "/v1/tasks?" .. list, h) end
  i = i % #ids + 1
  return wrk.format("GET", "/v1/tasks/" .. ids[i], h)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "bench_requests=%d\nbench_duration_us=%d\nbench_bytes=%d\n" ..
    "bench_connect_errors=%d\nbench_read_errors=%d\nbench_write_errors=%d\n" ..
    "bench_status_errors=%d\nbench_timeouts=%d\n" ..
    "bench_p50_us=%d\nbench_p99_us=%d\nbench_p999_us=%d\nbench_max_us=%d\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
