-- wrk script of `make bench`: every request carries the next token of a file (one a
-- line) as its bearer; a line "CALLER<TAB>FORM" sends CALLER as the bearer and FORM as an
-- application/x-www-form-urlencoded body instead (introspection: the gateway's token,
-- and the token it asks about). Arguments: the token file, the method, the number of threads,
-- optionally a file holding every request's body (sent as JSON, "" for none) and
-- optionally the mean pause in milliseconds each connection makes before each request
-- (the constant-rate runs). Thread i takes
-- lines i, i+n, i+2n, ...: no two requests share a token until a thread has used all
-- of its share; it then starts over and counts a wrap, which done() reports.
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file, method, nthreads, bodyfile, pause = args[1], args[2], tonumber(args[3]), args[4], tonumber(args[5])
  local body = nil
  local headers = {}
  if bodyfile and bodyfile ~= "" then
    local f = assert(io.open(bodyfile, "rb"))
    body = f:read("*a")
    f:close()
    headers["Content-Type"] = "application/json"
  end
  reqs = {}
  local i = 0
  for line in io.lines(file) do
    if i % nthreads == id then
      local caller, form = string.match(line, "^([^\t]*)\t(.*)$")
      if caller then
        reqs[#reqs + 1] = wrk.format(method, nil, {
          ["Authorization"] = "Bearer " .. caller,
          ["Content-Type"] = "application/x-www-form-urlencoded",
        }, form)
      else
        headers["Authorization"] = "Bearer " .. line
        reqs[#reqs + 1] = wrk.format(method, nil, headers, body)
      end
    end
    i = i + 1
  end
  nxt = 0
  wraps = 0
  if pause then
    -- wrk looks for delay() after init, so defining it here paces this run only. The
    -- pauses are drawn from an exponential distribution of that mean, so that the
    -- connections do not fall into step and arrive in bursts (arrivals as from many
    -- independent clients), each rounded up or down at random to whole milliseconds.
    math.randomseed(id + 1)
    function delay()
      return math.floor(-pause * math.log(1 - math.random()) + math.random())
    end
  end
end

function request()
  nxt = nxt + 1
  if nxt > #reqs then
    nxt = 1
    wraps = wraps + 1
  end
  return reqs[nxt]
end

function done(summary, latency, requests)
  local wrapped = 0
  for _, t in ipairs(threads) do
    wrapped = wrapped + (t:get("wraps") or 0)
  end
  local e = summary.errors
  io.write(string.format("wrk-result %d %d %d %d %d %d %d\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99), wrapped))
end
