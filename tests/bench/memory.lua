-- wrk script of tests/bench/memory.sh: every request carries the session cookie of a user
-- picked at random from a file (one `Cookie` header value per line, the first argument after
-- `--`), so the proxy serves many different signed-in users, not one hot one. Like status.lua,
-- it counts the responses whose status is not 200 and prints one machine-readable RESULT line.

local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  non200 = 0
  cookies = {}
  local file = assert(io.open(args[1], "r"), "cannot open the cookie file " .. tostring(args[1]))
  for line in file:lines() do
    if #line > 0 then
      cookies[#cookies + 1] = line
    end
  end
  file:close()
  assert(#cookies > 0, "the cookie file is empty")
  math.randomseed(os.time() + id * 7919)
end

function request()
  return wrk.format("GET", wrk.path, { ["Cookie"] = cookies[math.random(#cookies)] })
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
