-- wrk script: the chat mix of loadtest/mixed.js, as fast as wrk can:
-- personalised reads of the latest page, personalised reads of one
-- message, and reaction posts, in the shares of loadtest/fixedrate's
-- mixWeights (57.5 %, 31 % and 11.5 %).
--
--   wrk -t2 -c64 -d10s -s loadtest/wrk/mixed.lua http://127.0.0.1:8080 -- ids.txt readers.txt run1
--
-- ids.txt holds the message ids read and reacted to, readers.txt the user
-- ids that read (one taken at random for each read); the third argument
-- keeps the users of the posts distinct across runs.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local function lines(path)
  local out = {}
  for line in io.lines(path) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

function init(args)
  ids = lines(args[1])
  readers = lines(args[2])
  run = args[3] or "mixed"
  n = 0
  math.randomseed(os.time() * 100 + tid)
end

function request()
  local k = math.random(1000)
  local reader = readers[math.random(#readers)]
  if k <= 575 then
    return wrk.format("GET", "/messages?user_id=" .. reader)
  elseif k <= 885 then
    return wrk.format("GET", "/messages/" .. ids[math.random(#ids)] .. "?user_id=" .. reader)
  end
  n = n + 1
  local body = string.format('{"type":"like","user_id":"%s-%d-%d","score":%d}', run, tid, n, (n % 50) + 1)
  return wrk.format("POST", "/messages/" .. ids[math.random(#ids)] .. "/reactions",
    { ["Content-Type"] = "application/json" }, body)
end
