-- InitiateAuth REFRESH_TOKEN_AUTH with the same refresh token every time (the client does not rotate them).
-- env: BENCH_CLIENT_ID, BENCH_REFRESH_TOKEN
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local body

function init(args)
  body = '{"AuthFlow":"REFRESH_TOKEN_AUTH","ClientId":' .. common.json_string(common.env("BENCH_CLIENT_ID"))
    .. ',"AuthParameters":{"REFRESH_TOKEN":' .. common.json_string(common.env("BENCH_REFRESH_TOKEN")) .. '}}'
end

function request()
  return common.request("InitiateAuth", body)
end
