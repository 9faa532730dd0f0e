-- wrk script: GET a path as a random reader, as a chat client reads it:
-- with the reader's user_id, or with the reader's own bearer token (the
-- API then shows the token's user their own reactions).
--
--   wrk -t2 -c64 -d10s -s loadtest/wrk/read-as.lua http://127.0.0.1:8080 -- readers.txt /messages user
--   wrk -t2 -c64 -d10s -s loadtest/wrk/read-as.lua http://127.0.0.1:8080 -- tokens.txt /messages token
--
-- The file holds user ids (user) or tokens (token), one a line; each
-- request takes a line at random.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  lines = {}
  for line in io.lines(args[1]) do
    if #line > 0 then lines[#lines + 1] = line end
  end
  path = args[2] or "/messages"
  mode = args[3] or "user"
  sep = "?"
  if string.find(path, "?", 1, true) then sep = "&" end
  math.randomseed(os.time() * 100 + tid) -- threads pick different readers
end

function request()
  local line = lines[math.random(#lines)]
  if mode == "token" then
    return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. line })
  end
  return wrk.format("GET", path .. sep .. "user_id=" .. line)
end
