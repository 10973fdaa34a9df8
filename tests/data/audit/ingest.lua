-- wrk: POST one report per request, each with a fresh report id.
local token = os.getenv("TOKEN")
local host = os.getenv("BENCH_HOST")
local n = 0
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  n = n + 1
  local id = string.format("%08x-%04x-4%03x-8%03x-%012x", math.random(0, 0x7fffffff), math.random(0, 0xffff),
    math.random(0, 0xfff), math.random(0, 0xfff), n * 65536 + math.random(0, 0xffff))
  local t = os.date("!%Y-%m-%dT%H:%M:%S.000Z")
  local body = '{"schema":"vigil.report/v1","report_id":"' .. id .. '",' ..
    '"agent":{"host":"' .. host .. '","version":"0.1.0"},' ..
    '"policy":{"id":"p","version":"1","sha256":"' .. string.rep("b", 64) .. '"},' ..
    '"started_at":"' .. t .. '","finished_at":"' .. t .. '",' ..
    '"controls":[{"id":"SP-1","title":"t","status":"pass","checks":[{"id":"c","type":"tls_endpoint","status":"pass","summary":"ok","findings":[],"evidence":{},"duration_ms":1}]}],' ..
    '"summary":{"pass":1,"fail":0,"error":0,"attested":0,"skipped":0,"waived":0,"unknown":0}}'
  return wrk.format("POST", "/api/v1/reports",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end
