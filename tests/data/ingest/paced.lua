-- post.lua with a pause between one agent's reports: `wrk -t N -c N -s
-- paced.lua URL -- HOSTS_FILE OUT_DIR DELAY_MS` makes N agents post about
-- N * 1000 / DELAY_MS reports a second in all, a fleet's steady trickle
-- rather than a flood (tests/data/fleet/bench.sh measures the views beside
-- it with INGEST=N).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "post.lua")

local post_init = init
delay_ms = 0

function init(args)
   delay_ms = tonumber(args[3] or "0") or 0
   post_init(args)
end

function delay()
   return delay_ms
end
