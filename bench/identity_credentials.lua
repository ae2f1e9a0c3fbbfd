-- Identity pools: GetId then GetCredentialsForIdentity, alternating on each wrk thread, both with a Logins map
-- holding the user pool's ID token (the same identity every time: GetId answers it again for the same login).
-- env: BENCH_IDENTITY_POOL_ID, BENCH_IDENTITY_ID, BENCH_LOGIN_PROVIDER, BENCH_ID_TOKEN
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local get_id, get_credentials
local sent = 0

function init(args)
  local logins = '{' .. common.json_string(common.env("BENCH_LOGIN_PROVIDER")) .. ':'
    .. common.json_string(common.env("BENCH_ID_TOKEN")) .. '}'
  get_id = '{"IdentityPoolId":' .. common.json_string(common.env("BENCH_IDENTITY_POOL_ID"))
    .. ',"Logins":' .. logins .. '}'
  get_credentials = '{"IdentityId":' .. common.json_string(common.env("BENCH_IDENTITY_ID"))
    .. ',"Logins":' .. logins .. '}'
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
    return identity_request("GetId", get_id)
  end
  return identity_request("GetCredentialsForIdentity", get_credentials)
end
