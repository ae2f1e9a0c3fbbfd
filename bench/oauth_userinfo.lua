-- GET /oauth2/userInfo, each request with the next of the thread's share of the user's distinct access tokens
-- with scope openid (BENCH_OPENID_ACCESS_TOKENS_FILE; see common.load_tokens), so every request's signature is
-- checked. Without the file, the same BENCH_OPENID_ACCESS_TOKEN every time.
-- env: BENCH_OPENID_ACCESS_TOKEN; BENCH_OPENID_ACCESS_TOKENS_FILE and BENCH_WRK_THREADS (set by run.py)
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local bearers = {}
local position = 0

setup = common.setup

function init(args)
  for i, token in ipairs(common.load_tokens("BENCH_OPENID_ACCESS_TOKENS_FILE", "BENCH_OPENID_ACCESS_TOKEN")) do
    bearers[i] = "Bearer " .. token
  end
end

function request()
  position = position % #bearers + 1
  return wrk.format("GET", common.path, { ["Authorization"] = bearers[position] })
end
