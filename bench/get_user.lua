-- GetUser with the same access token every time.
-- env: BENCH_ACCESS_TOKEN
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local body

function init(args)
  body = '{"AccessToken":' .. common.json_string(common.env("BENCH_ACCESS_TOKEN")) .. '}'
end

function request()
  return common.request("GetUser", body)
end
