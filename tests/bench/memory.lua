-- wrk script of tests/bench/memory.sh: every request carries the session cookie of a user
-- picked at random from a file (one `Cookie` header value per line, the first argument after
-- `--`), so the proxy serves many different signed-in users, not one hot one. The counting of
-- non-200 responses and the RESULT line are status.lua's (loaded from beside this file).

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "status.lua")

local status_setup, status_init = setup, init
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  status_setup(thread)
end

function init(args)
  status_init(args)
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
