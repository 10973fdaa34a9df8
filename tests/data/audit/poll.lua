-- wrk: anonymous clients polling the public routes in turn; done() prints
-- how many answers had each status (429: the public rate limit).
local paths = {"/api/v1/audit/checkpoint", "/trust.json", "/brochure.pdf"}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  i = 0
end

request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end

response = function(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local all = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do
      all[k] = (all[k] or 0) + v
    end
  end
  for k, v in pairs(all) do
    io.write(string.format("status %d: %d\n", k, v))
  end
end
