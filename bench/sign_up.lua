-- SignUp with a new username on every request: "<run id>-t<thread id>-<counter>".
-- The thread id is handed to each thread's Lua state by setup(); the counter is per thread, so names never repeat.
-- env: BENCH_CLIENT_ID, BENCH_PASSWORD, BENCH_RUN_ID
local common = dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
local threads_made = 0
local prefix, client_id, password
local counter = 0

function setup(thread)
  threads_made = threads_made + 1
  thread:set("bench_thread_id", threads_made)
end

function init(args)
  prefix = common.env("BENCH_RUN_ID") .. "-t" .. tostring(bench_thread_id) .. "-"
  client_id = common.json_string(common.env("BENCH_CLIENT_ID"))
  password = common.json_string(common.env("BENCH_PASSWORD"))
end

function request()
  counter = counter + 1
  local body = '{"ClientId":' .. client_id .. ',"Username":' .. common.json_string(prefix .. tostring(counter))
    .. ',"Password":' .. password .. '}'
  return common.request("SignUp", body)
end
