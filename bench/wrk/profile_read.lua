-- Filtered profile read: GET /v1/subjects/<id>/profile?purpose=personalization with a
-- bearer token of a client that has profile:read and is bound to personalization.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local headers = {["Accept"] = "application/json", ["Authorization"] = "Bearer " .. token}

function request()
   return wrk.format("GET", "/v1/subjects/" .. next_subject() .. "/profile?purpose=personalization",
                     headers)
end
