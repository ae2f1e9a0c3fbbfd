-- GET the hosted sign-in page of one stored authorization request (the same rid every time).
-- env: BENCH_PATH (Gatehouse: /{UserPoolId}/login?rid=...; the ceiling: its hello-world /hello)
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function request()
  return wrk.format("GET", common.path, { ["Accept"] = "text/html" })
end
