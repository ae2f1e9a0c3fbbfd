-- POST /oauth2/token grant_type=client_credentials with client_secret_basic.
-- env: BENCH_MACHINE_BASIC (base64 of client_id:client_secret)
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local basic

function init(args)
  basic = "Basic " .. common.env("BENCH_MACHINE_BASIC")
end

function request()
  return wrk.format("POST", common.path, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = basic,
  }, "grant_type=client_credentials")
end
