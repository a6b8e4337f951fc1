-- The test context `t` and its assertions. They run as plain Lua (no Go
-- crossing) because assertions are the hottest path of a test body.
-- The runner gets the private state of a context through `state_of`.
local string_format, tostring, error, pcall, type, setmetatable =
  string.format, tostring, error, pcall, type, setmetatable

local SKIP = setmetatable({}, { __name = "provium.skip" })
local skip_mt = { __name = "provium.skip", __provium_skip = true,
  __tostring = function(s) return s.reason end }

local states = setmetatable({}, { __mode = "k" })
local T = {}
T.__index = T
T.__name = "TestContext"

local function fail(self, msg)
  local st = states[self]
  if not st.failed then
    st.failed = true
    st.message = msg
  end
  error(msg, 3)
end

function T:assert(c, msg)
  if not c then fail(self, msg or "assertion failed") end
  return c
end

function T:assert_eq(a, b, msg)
  if a ~= b then
    fail(self, (msg or "assert_eq failed") .. ": " .. tostring(a) .. " ~= " .. tostring(b))
  end
end

function T:assert_neq(a, b, msg)
  if a == b then
    fail(self, (msg or "assert_neq failed") .. ": " .. tostring(a) .. " == " .. tostring(b))
  end
end

local CONTAINS_LIMIT = 4096

function T:assert_contains(h, n, msg)
  if type(h) ~= "string" or type(n) ~= "string" then
    fail(self, "assert_contains: both arguments must be strings (slice 2 limit)")
  end
  if not h:find(n, 1, true) then
    if #h > CONTAINS_LIMIT then h = h:sub(1, CONTAINS_LIMIT) end
    fail(self, (msg or "assert_contains failed") .. ": " .. n .. " not found in: " .. h)
  end
end

function T:assert_raises(fn, msg)
  local st = states[self]
  local failed, message = st.failed, st.message
  local ok, err = pcall(fn)
  if ok then
    fail(self, (msg or "assert_raises") .. ": expected to raise")
  end
  st.failed, st.message = failed, message
  return err
end

function T:fail(msg)
  fail(self, msg or "explicit failure (t:fail)")
end

function T:skip(reason)
  error(setmetatable({ reason = reason == nil and "skipped" or tostring(reason) }, skip_mt), 0)
end

function T:log(v)
  local log = states[self].log
  log[#log + 1] = tostring(v)
end

local function new_context(name, meta)
  local t = setmetatable({ name = name, meta = meta or {} }, T)
  states[t] = { failed = false, log = {} }
  return t
end

local function state_of(t)
  local st = states[t]
  return st.failed, st.message, st.log
end

return { new_context = new_context, state_of = state_of, skip_mt = skip_mt }
