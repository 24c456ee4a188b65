-- Consent-state read: GET /v1/subjects/<id>/consents with the banner's property key.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local headers = {["Accept"] = "application/json", ["X-Property-Key"] = property_key}

function request()
   return wrk.format("GET", "/v1/subjects/" .. next_subject() .. "/consents", headers)
end
