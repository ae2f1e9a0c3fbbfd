-- Identity pools: GetId then GetCredentialsForIdentity, alternating on each wrk thread, both with a Logins map
-- holding one of the user's ID tokens (the same identity every time: GetId answers it again for the same login).
-- Each pair takes the next token of the thread's share of BENCH_ID_TOKENS_FILE (distinct tokens of that user,
-- one per line, thread i of BENCH_WRK_THREADS taking lines i+1, i+1+threads, ...), so a token comes back only
-- after the whole share has gone round: what a load of many users does, each sending a token twice in a row
-- and then not for a long while. Without the file, every pair sends BENCH_ID_TOKEN.
-- env: BENCH_IDENTITY_POOL_ID, BENCH_IDENTITY_ID, BENCH_LOGIN_PROVIDER, BENCH_ID_TOKEN; BENCH_ID_TOKENS_FILE and
-- BENCH_WRK_THREADS (set by run.py)
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local pool_json, identity_json, provider_json
local tokens = {}
local position = 0
local logins
local sent = 0

-- Runs in wrk's main state once per thread before the thread's init: number the threads.
local next_thread = 0
function setup(thread)
  thread:set("bench_thread_index", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  pool_json = common.json_string(common.env("BENCH_IDENTITY_POOL_ID"))
  identity_json = common.json_string(common.env("BENCH_IDENTITY_ID"))
  provider_json = common.json_string(common.env("BENCH_LOGIN_PROVIDER"))
  local file_name = os.getenv("BENCH_ID_TOKENS_FILE")
  if file_name ~= nil and file_name ~= "" then
    local index = bench_thread_index or 0
    local threads = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
    local file = assert(io.open(file_name, "r"))
    local line_number = 0
    for line in file:lines() do
      if line ~= "" then
        if line_number % threads == index then
          -- A JWT is base64url segments and dots: nothing a JSON string must escape.
          assert(line:match("^[%w%-_%.]+$"), "bench: not a JWT in " .. file_name)
          tokens[#tokens + 1] = line
        end
        line_number = line_number + 1
      end
    end
    file:close()
  end
  if #tokens == 0 then
    tokens[1] = common.env("BENCH_ID_TOKEN")
  end
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
