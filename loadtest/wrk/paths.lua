-- wrk script: GET a path taken at random from a file, one path a line,
-- optionally as a reader taken at random from a second file of user ids.
--
--   wrk -t1 -c32 -d10s -s loadtest/wrk/paths.lua http://127.0.0.1:8080 -- paths.txt
--   wrk -t1 -c32 -d10s -s loadtest/wrk/paths.lua http://127.0.0.1:8080 -- paths.txt readers.txt
--
-- With a file of every channel's page 1, each request reads a random
-- channel, as the users of a deployment with many channels do.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local function read_lines(name)
  local out = {}
  for line in io.lines(name) do
    if #line > 0 then out[#out + 1] = line end
  end
  return out
end

function init(args)
  paths = read_lines(args[1])
  readers = nil
  if args[2] then readers = read_lines(args[2]) end
  math.randomseed(os.time() * 100 + tid) -- threads pick different paths
end

function request()
  local path = paths[math.random(#paths)]
  if readers then
    local sep = "?"
    if string.find(path, "?", 1, true) then sep = "&" end
    path = path .. sep .. "user_id=" .. readers[math.random(#readers)]
  end
  return wrk.format("GET", path)
end
