-- wrk: wrong logins, each connection cycling through 8 user names (one of
-- them real) with a fresh wrong password; done() prints status counts.
local threads = {}
local names = {"carol", "user1", "user2", "user3", "user4", "user5", "user6", "user7"}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  n = 0
end

request = function()
  n = n + 1
  local body = "name=" .. names[(n % #names) + 1] .. "&password=wrong-" .. n
  return wrk.format("POST", "/login",
    {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
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
