-- Consent write: POST /v1/consents with the banner's property key and Origin, as a banner
-- sends it: personalization granted, ads denied. Every request names another subject.
dofile(os.getenv("BENCH_WRK_DIR") .. "/common.lua")

local headers = {["Accept"] = "application/json", ["Content-Type"] = "application/json",
                 ["X-Property-Key"] = property_key, ["Origin"] = "https://shop.example"}

function request()
   local body = '{"subject_id":"' .. next_subject() ..
                '","purposes":{"personalization":"granted","ads":"denied"},"locale":"de",' ..
                '"source":{"url":"https://shop.example/","banner":"main"}}'
   return wrk.format("POST", "/v1/consents", headers, body)
end
