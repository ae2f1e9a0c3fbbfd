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

return M
