-- InitiateAuth USER_PASSWORD_AUTH for the same confirmed user every time.
-- env: BENCH_CLIENT_ID, BENCH_USERNAME, BENCH_PASSWORD
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local body

function init(args)
  body = '{"AuthFlow":"USER_PASSWORD_AUTH","ClientId":' .. common.json_string(common.env("BENCH_CLIENT_ID"))
    .. ',"AuthParameters":{"USERNAME":' .. common.json_string(common.env("BENCH_USERNAME"))
    .. ',"PASSWORD":' .. common.json_string(common.env("BENCH_PASSWORD")) .. '}}'
end

function request()
  return common.request("InitiateAuth", body)
end
