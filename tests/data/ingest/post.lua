-- wrk script for tests/data/ingest/load.sh: one thread = one connection = one
-- enrolled agent posting its own report template, each request with a fresh
-- report_id and fresh times.
--
-- Run with `wrk -t N -c N -s post.lua URL -- HOSTS_FILE OUT_DIR`: line i of
-- HOSTS_FILE is "host token template", and the template is a vigil-agent
-- JSON report whose host is `loadhost` and whose report_id, started_at and
-- finished_at values are @RID@, @START@ and @END@ (load.sh prepares them).
-- Each thread writes the ids the reporter answered 201 to OUT_DIR/ok-i and the
-- id it sent but saw no answer to (the request in flight when wrk stopped)
-- to OUT_DIR/pending-i, so that load.sh can compare them with the store.

local threads = {}
local counter = 1

function setup(thread)
   thread:set("index", counter)
   counter = counter + 1
   table.insert(threads, thread)
end

-- Globals, not locals: wrk's thread:get reads a thread's globals, and
-- `index` is set by setup() above.
pieces, token, host, out_dir, okfile = nil, nil, nil, nil, nil
seq = 0
last_rid = nil
ok, non2xx, s5xx, statuses = 0, 0, 0, {}

local function read(path)
   local f = assert(io.open(path, "rb"), "cannot read " .. path)
   local s = f:read("*a")
   f:close()
   return s
end

function init(args)
   local hosts_file, dir = args[1], args[2]
   out_dir = dir
   local n = 0
   for line in io.lines(hosts_file) do
      n = n + 1
      if n == index then
         host, token, template = line:match("^(%S+) (%S+) (%S+)$")
      end
   end
   assert(host, "no line " .. index .. " in " .. hosts_file .. " (more threads than hosts?)")
   local body = read(template):gsub("loadhost", host)
   -- Split once at the three placeholders; each request only concatenates.
   local a, b = body:find("@RID@", 1, true)
   local c, d = body:find("@START@", 1, true)
   local e, f = body:find("@END@", 1, true)
   assert(a and c and e and a < c and c < e, template .. ": placeholders missing or out of order")
   pieces = { body:sub(1, a - 1), body:sub(b + 1, c - 1), body:sub(d + 1, e - 1), body:sub(f + 1) }
   okfile = assert(io.open(out_dir .. "/ok-" .. index, "w"))
   -- wrk never closes a thread's Lua state: write each line through.
   okfile:setvbuf("line")
   math.randomseed(os.time() * 1000 + index)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
   seq = seq + 1
   -- UUID shape the reporter validates, unique per (run, thread, request).
   last_rid = string.format("%08x-%04x-4%03x-8%03x-%012x",
      math.random(0, 0x7fffffff), index, math.random(0, 0xfff), math.random(0, 0xfff), seq)
   local now = os.time()
   local start = os.date("!%Y-%m-%dT%H:%M:%SZ", now - 2)
   local fin = os.date("!%Y-%m-%dT%H:%M:%SZ", now)
   local body = pieces[1] .. last_rid .. pieces[2] .. start .. pieces[3] .. fin .. pieces[4]
   return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status == 201 then
      ok = ok + 1
      okfile:write(last_rid, "\n")
   else
      non2xx = non2xx + (status >= 200 and status < 300 and 0 or 1)
      if status >= 500 then
         s5xx = s5xx + 1
         io.stderr:write(host, ": ", status, " ", body:sub(1, 300), "\n")
      elseif status ~= 200 and non2xx <= 3 then
         io.stderr:write(host, ": ", status, " ", body:sub(1, 300), "\n")
      end
   end
   last_rid = nil
end

-- wrk calls done() in the main state after the threads stopped; the threads'
-- counters are read through thread:get.
function done(summary, latency, requests)
   local tok, tnon, t5 = 0, 0, 0
   local all = {}
   for _, t in ipairs(threads) do
      tok = tok + t:get("ok")
      tnon = tnon + t:get("non2xx")
      t5 = t5 + t:get("s5xx")
      local st = t:get("statuses")
      for k, v in pairs(st) do all[k] = (all[k] or 0) + v end
      local p = t:get("last_rid")
      local f = assert(io.open(t:get("out_dir") .. "/pending-" .. t:get("index"), "w"))
      if p then f:write(p, "\n") end
      f:close()
   end
   local secs = summary.duration / 1e6
   io.write(string.format("%d responses in %.1f s: %.0f/s; 201 (stored): %d = %.0f reports/s\n",
      summary.requests, secs, summary.requests / secs, tok, tok / secs))
   io.write(string.format("latency p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms\n",
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000))
   local codes = {}
   for k, v in pairs(all) do table.insert(codes, k .. "=" .. v) end
   table.sort(codes)
   io.write("statuses ", table.concat(codes, " "), "\n")
   io.write(string.format("socket errors: connect %d, read %d, write %d, timeout %d\n",
      summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
   io.write(string.format("RESULT ok=%d non2xx=%d s5xx=%d requests=%d seconds=%.2f rps=%.1f p50_ms=%.1f p99_ms=%.1f\n",
      tok, tnon, t5, summary.requests, secs, tok / secs,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
