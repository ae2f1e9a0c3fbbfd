-- GetUser, each request with the next of the thread's share of the user's distinct access tokens
-- (BENCH_ACCESS_TOKENS_FILE; see common.load_tokens): every request's signature is checked, as a load of many
-- users' tokens needs. Without the file, the same BENCH_ACCESS_TOKEN every time.
-- env: BENCH_ACCESS_TOKEN; BENCH_ACCESS_TOKENS_FILE and BENCH_WRK_THREADS (set by run.py)
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local bodies = {}
local position = 0

setup = common.setup

function init(args)
  for i, token in ipairs(common.load_tokens("BENCH_ACCESS_TOKENS_FILE", "BENCH_ACCESS_TOKEN")) do
    bodies[i] = '{"AccessToken":"' .. token .. '"}'
  end
end

function request()
  position = position % #bodies + 1
  return common.request("GetUser", bodies[position])
end
