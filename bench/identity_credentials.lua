-- Identity pools: GetId then GetCredentialsForIdentity, alternating on each wrk thread, both with a Logins map
-- holding one of the user's ID tokens (the same identity every time: GetId answers it again for the same login).
-- Each pair takes the next token of the thread's share of BENCH_ID_TOKENS_FILE (distinct tokens of that user;
-- see common.load_tokens), so a token comes back only after the whole share has gone round: what a load of many
-- users does, each sending a token twice in a row and then not for a long while. Without the file, every pair
-- sends BENCH_ID_TOKEN.
-- env: BENCH_IDENTITY_POOL_ID, BENCH_IDENTITY_ID, BENCH_LOGIN_PROVIDER, BENCH_ID_TOKEN; BENCH_ID_TOKENS_FILE and
-- BENCH_WRK_THREADS (set by run.py)
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local pool_json, identity_json, provider_json
local tokens = {}
local position = 0
local logins
local sent = 0

setup = common.setup

function init(args)
  pool_json = common.json_string(common.env("BENCH_IDENTITY_POOL_ID"))
  identity_json = common.json_string(common.env("BENCH_IDENTITY_ID"))
  provider_json = common.json_string(common.env("BENCH_LOGIN_PROVIDER"))
  tokens = common.load_tokens("BENCH_ID_TOKENS_FILE", "BENCH_ID_TOKEN")
end

local function identity_request(operation, body)
  return wrk.format("POST", common.path, {
    ["Content-Type"] = "application/x-amz-json-1.1",
    ["X-Amz-Target"] = "AWSCognitoIdentityService." .. operation,
  }, body)
end

function request()
  sent = sent + 1
  if sent % 2 == 1 then
    position = position % #tokens + 1
    logins = '{' .. provider_json .. ':"' .. tokens[position] .. '"}'
    return identity_request("GetId", '{"IdentityPoolId":' .. pool_json .. ',"Logins":' .. logins .. '}')
  end
  return identity_request("GetCredentialsForIdentity", '{"IdentityId":' .. identity_json .. ',"Logins":' .. logins .. '}')
end
