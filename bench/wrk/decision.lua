-- Decision: POST /v1/decisions for the placement homepage_hero with a decision:write token.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local headers = {["Accept"] = "application/json", ["Content-Type"] = "application/json",
                 ["Authorization"] = "Bearer " .. token}

function request()
   local body = '{"subject_id":"' .. next_subject() ..
                '","placement":"homepage_hero","locale":"de","context":{"device":"mobile"}}'
   return wrk.format("POST", "/v1/decisions", headers, body)
end
