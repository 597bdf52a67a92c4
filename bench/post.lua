-- post.lua: wrk script for `make bench`. Every request is the same POST:
--   BENCH_BODY   file holding the request body (a ~300-byte task)
--   BENCH_PATH   request path (default /v1/tasks)
--   BENCH_AUTH   value of the Authorization header (optional)
-- done() prints the figures as key=value lines for bench/run.sh; latencies
-- are in microseconds, and status_errors counts answers >= 400 (wrk's own
-- count), so the 2xx answers are requests - status_errors.
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a"):gsub("%s+$", "")
f:close()
wrk.method = "POST"
wrk.path = os.getenv("BENCH_PATH") or "/v1/tasks"
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end

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
