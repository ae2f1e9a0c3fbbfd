-- GET /oauth2/userInfo with the same access token (scope openid) every time.
-- env: BENCH_OPENID_ACCESS_TOKEN
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local bearer

function init(args)
  bearer = "Bearer " .. common.env("BENCH_OPENID_ACCESS_TOKEN")
end

function request()
  return wrk.format("GET", common.path, { ["Authorization"] = bearer })
end
