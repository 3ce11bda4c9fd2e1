-- A small self-checking workout of the Lua interpreter built by tests/test_real_projects.py: the lexer, parser,
-- code generator, VM, garbage collector and standard libraries all take part. Upstream's test suite ships
-- separately from the source tarball; this stands in for it. Every check asserts, so a miscompiled TU fails here.

local function check(cond, what)
  if not cond then error("check failed: " .. what, 2) end
end

-- integers, floats, bit operations, integer division and conversions
check(7 // 2 == 3 and -7 // 2 == -4 and 7 % -3 == -2, "integer division and modulo")
check(math.type(1) == "integer" and math.type(1.0) == "float", "number subtypes")
check(3 / 2 == 1.5 and 2^10 == 1024.0, "float arithmetic")
check((0xF0 | 0x0F) == 0xFF and (0xFF ~ 0x0F) == 0xF0 and (1 << 62) >> 61 == 2, "bit operations")
check(math.maxinteger + 1 == math.mininteger, "integer wrap-around")
check(tostring(1e15) == "1e+15" and tostring(2^53) == "9.007199254741e+15", "float formatting")
check(math.tointeger(3.0) == 3 and math.tointeger(3.5) == nil, "float to integer")

-- strings, patterns, formatting, packing
local s = "The quick brown fox jumps over the lazy dog"
check(#s == 43 and s:upper():sub(5, 9) == "QUICK", "string basics")
local words = {}
for w in s:gmatch("%a+") do words[#words + 1] = w:lower() end
check(#words == 9 and words[9] == "dog", "gmatch")
check(s:gsub("o", "0") == "The quick br0wn f0x jumps 0ver the lazy d0g", "gsub")
check(select(2, s:gsub("%s", "")) == 8, "gsub count")
check(string.format("%5.2f|%-4d|%x|%q", 3.14159, 42, 255, "a\nb") == ' 3.14|42  |ff|"a\\\nb"', "format")
check(string.unpack("<i4", string.pack("<i4", -123456)) == -123456, "pack/unpack")
check(("%d items"):format(3) == "3 items" and ("abc"):rep(3, "-") == "abc-abc-abc", "format and rep")
check(utf8.len("héllo") == 5 and utf8.char(0x48, 0x49) == "HI", "utf8")

-- tables, sorting, closures, varargs
local t = {}
for i = 1, 1000 do t[i] = (i * 7919) % 1009 end
table.sort(t)
for i = 2, #t do check(t[i - 1] <= t[i], "sort order") end
table.sort(t, function(a, b) return a > b end)
check(t[1] == 1008 and t[#t] >= 0, "sort with comparator")
check(table.concat({1, 2, 3}, ",") == "1,2,3" and select("#", table.unpack({1, nil, 3}, 1, 3)) == 3, "concat/unpack")
local function counter()
  local n = 0
  return function() n = n + 1; return n end
end
local c1, c2 = counter(), counter()
c1(); c1()
check(c1() == 3 and c2() == 1, "closures keep separate upvalues")
local function sum(...)
  local total = 0
  for _, v in ipairs({...}) do total = total + v end
  return total, select("#", ...)
end
local total, n = sum(1, 2, 3, 4)
check(total == 10 and n == 4, "varargs")

-- metatables and metamethods
local Vec = {}
Vec.__index = Vec
Vec.__add = function(a, b) return setmetatable({x = a.x + b.x, y = a.y + b.y}, Vec) end
Vec.__eq = function(a, b) return a.x == b.x and a.y == b.y end
Vec.__tostring = function(v) return "(" .. v.x .. "," .. v.y .. ")" end
function Vec.new(x, y) return setmetatable({x = x, y = y}, Vec) end
local v = Vec.new(1, 2) + Vec.new(3, 4)
check(v == Vec.new(4, 6) and tostring(v) == "(4,6)", "metamethods")

-- coroutines, errors, load, goto
local gen = coroutine.wrap(function()
  for i = 1, 3 do coroutine.yield(i * i) end
  return "done"
end)
check(gen() == 1 and gen() == 4 and gen() == 9 and gen() == "done", "coroutines")
local ok, err = pcall(function() error({code = 7}) end)
check(not ok and err.code == 7, "error objects")
ok, err = pcall(function() local x = nil; return x.field end)
check(not ok and tostring(err):find("attempt to index") ~= nil, "runtime errors")
local f = assert(load("local a, b = ...; return a * b + 1"))
check(f(6, 7) == 43, "load")
local i = 0
::again::
i = i + 1
if i < 5 then goto again end
check(i == 5, "goto")

-- the garbage collector under some churn, with weak tables
local weak = setmetatable({}, {__mode = "k"})
do
  for k = 1, 20000 do local obj = {k}; if k % 1000 == 0 then weak[obj] = true end end
end
collectgarbage("collect")
local live = 0
for _ in pairs(weak) do live = live + 1 end
check(live == 0, "weak keys collected")
local big = {}
for k = 1, 50000 do big["key" .. k] = k end
local acc = 0
for _, val in pairs(big) do acc = acc + val end
check(acc == 50000 * 50001 // 2, "large hash table")

print("lua check ok: " .. _VERSION)
