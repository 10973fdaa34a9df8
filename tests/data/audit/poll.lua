-- wrk: anonymous clients polling the public routes in turn.
local paths = {"/api/v1/audit/checkpoint", "/trust.json", "/brochure.pdf"}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1])
end
