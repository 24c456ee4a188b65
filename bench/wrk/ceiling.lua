-- The ceiling: GET /ceiling/<id> on the bare Flask app (bench/ceiling_app.py).
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local headers = {["Accept"] = "application/json"}

function request()
   return wrk.format("GET", "/ceiling/" .. next_subject(), headers)
end
