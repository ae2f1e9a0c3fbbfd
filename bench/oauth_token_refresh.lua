-- POST /oauth2/token grant_type=refresh_token (a public client; the same refresh token every time).
-- env: BENCH_CLIENT_ID, BENCH_REFRESH_TOKEN (both URL-safe as they are)
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local body

function init(args)
  body = "grant_type=refresh_token&client_id=" .. common.env("BENCH_CLIENT_ID")
    .. "&refresh_token=" .. common.env("BENCH_REFRESH_TOKEN")
end

function request()
  return wrk.format("POST", common.path, { ["Content-Type"] = "application/x-www-form-urlencoded" }, body)
end
