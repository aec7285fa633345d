-- wrk script of tests/bench/run.sh: counts the responses whose status is not 200 (a lost
-- session answers with fast redirects or 401s, which wrk alone would count as successes) and
-- prints one machine-readable RESULT line with the figures the benchmark uses.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non200 = 0
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non200")
  end
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d non200=%d socket_errors=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p90_us=%d p99_us=%d mean_us=%.1f\n",
    summary.requests, summary.duration, bad, e.connect + e.read + e.write + e.timeout,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
