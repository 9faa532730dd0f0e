-- wrk script: POST /messages/{id}/reactions as fast as wrk can, each
-- request a new (user, message) pair, so every request creates a reaction.
--
--   wrk -t2 -c16 -d10s -s loadtest/wrk/post-reaction.lua http://127.0.0.1:8080 -- ids.txt run1
--
-- ids.txt holds message ids, one per line: many ids spread the load, one id
-- makes a hot message. The second argument keeps user ids distinct across
-- runs against the same database.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  ids = {}
  for line in io.lines(args[1]) do
    if #line > 0 then ids[#ids + 1] = line end
  end
  run = args[2] or "run"
  n = 0
end

local types = { "like", "love", "clap" }

function request()
  n = n + 1
  local id = ids[(n % #ids) + 1]
  local body = string.format('{"type":"%s","user_id":"%s-%d-%d","score":%d}',
    types[(n % 3) + 1], run, tid, n, (n % 50) + 1)
  return wrk.format("POST", "/messages/" .. id .. "/reactions", { ["Content-Type"] = "application/json" }, body)
end
