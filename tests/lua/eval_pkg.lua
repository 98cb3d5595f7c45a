-- Evaluates a generated .pkg.lua the way Zoi's parser sees it, with a
-- `metadata` stub, and prints the table passed to it as canonical JSON
-- (arrays for 1..n tables, objects with sorted keys otherwise).
--
-- usage: lua eval_pkg.lua FILE.pkg.lua
local path = assert(arg[1], "usage: eval_pkg.lua FILE")

local captured, calls = nil, 0
local env = {
  -- ZOI.VERSION is nil on one of Zoi's passes: the file must not need it.
  ZOI = {},
  SYSTEM = { OS = "linux", ARCH = "amd64" },
  metadata = function(t) captured = t; calls = calls + 1 end,
}
-- Anything else the file touches at top level is a side effect we refuse.
setmetatable(env, { __index = function(_, k) error("top level touches global '" .. tostring(k) .. "'", 2) end })

local chunk = assert(loadfile(path, "t", env))
chunk()
assert(calls == 1, "metadata() must be called exactly once, was called " .. calls .. " times")

local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do if t[i] == nil then return false end end
  return n > 0
end

local function str(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return string.format("\\u%04x", c:byte()) end) .. '"'
end

local function enc(v)
  local ty = type(v)
  if ty == "string" then return str(v)
  elseif ty == "boolean" or ty == "number" then return tostring(v)
  elseif ty == "table" then
    local parts = {}
    if is_array(v) then
      for i = 1, #v do parts[#parts + 1] = enc(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do parts[#parts + 1] = str(k) .. ":" .. enc(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  error("cannot encode a " .. ty)
end

io.write(enc(captured), "\n")
