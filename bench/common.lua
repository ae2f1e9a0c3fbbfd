-- Shared by the wrk scripts in bench/: the Cognito JSON wire's request shape and a JSON string encoder.
-- Each script loads it with dofile() from its own folder; run.py passes values through the environment.
local M = {}

-- Where to POST: "/" for Gatehouse; the ceiling probe's endpoint (/refresh, /getuser, /password) when
-- run.py drives the same script against bench/ceiling.py.
M.path = os.getenv("BENCH_PATH") or "/"

function M.env(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error("bench: environment variable " .. name .. " is not set")
  end
  return value
end

-- A JSON string literal (RFC 8259 section 7) for text that may hold quotes, backslashes or control characters.
function M.json_string(text)
  local escaped = text:gsub('[%c"\\]', function(c)
    if c == '"' then
      return '\\"'
    elseif c == "\\" then
      return "\\\\"
    end
    return string.format("\\u%04x", c:byte())
  end)
  return '"' .. escaped .. '"'
end

-- One request on the wire. wrk.format adds Host and Content-Length; it writes Content-Length into the headers
-- table it is given, so each call gets a table of its own.
function M.request(operation, body)
  return wrk.format("POST", M.path, {
    ["Content-Type"] = "application/x-amz-json-1.1",
    ["X-Amz-Target"] = "AWSCognitoIdentityProviderService." .. operation,
  }, body)
end

-- Scripts that share a token file out between wrk's threads set `setup = common.setup`: it runs in wrk's main
-- state once per thread, before the thread's init, and numbers the threads.
local next_thread = 0
function M.setup(thread)
  thread:set("bench_thread_index", next_thread)
  next_thread = next_thread + 1
end

-- This thread's share of the tokens in the file named by file_variable (one per line; thread i of
-- BENCH_WRK_THREADS takes lines i+1, i+1+threads, ...), or the one token in fallback_variable when there is no
-- file. Cycling through the share, a thread sends a token again only after all the others.
function M.load_tokens(file_variable, fallback_variable)
  local tokens = {}
  local file_name = os.getenv(file_variable)
  if file_name ~= nil and file_name ~= "" then
    local index = bench_thread_index or 0
    local threads = tonumber(os.getenv("BENCH_WRK_THREADS") or "1")
    local file = assert(io.open(file_name, "r"))
    local line_number = 0
    for line in file:lines() do
      if line ~= "" then
        if line_number % threads == index then
          -- A JWT is base64url segments and dots: nothing a JSON string or a header must escape.
          assert(line:match("^[%w%-_%.]+$"), "bench: not a JWT in " .. file_name)
          tokens[#tokens + 1] = line
        end
        line_number = line_number + 1
      end
    end
    file:close()
  end
  if #tokens == 0 then
    tokens[1] = M.env(fallback_variable)
  end
  return tokens
end

return M
