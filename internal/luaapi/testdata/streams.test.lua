-- Tails and console streams against one booted guest (the default image).
local vm = provium:vm("s", "linux", {memory = "256M"})
vm:boot()

local function put(path, data)
  vm:write_file(path, data)
end

local function append(path, data)
  local f = vm:open_file(path, {append = true, create = true})
  f:write(data)
  f:close()
end

test("tail_file start forms", function(t)
  local p = "/tmp/start.txt"
  put(p, "0123456789")
  local cases = {
    {{start = "beginning"}, "0123456789"},
    {{start = "start"}, "0123456789"},
    {{start = 3}, "3456789"},
    {{start = 0}, "0123456789"},
    {{start = -4}, "6789"},
    {{start = -100}, "0123456789"},
    {{start = 2.9}, "23456789"},
    {{start = -2.9}, "89"},
  }
  for i, c in ipairs(cases) do
    local s = vm:tail_file(p, c[1])
    t:assert_eq(s:read_until("9", 5), c[2], "case " .. i)
    s:close()
  end
  -- "end" (and the default): only bytes appended afterwards
  for _, opts in ipairs({{start = "end"}, {}, false}) do
    local s = opts and vm:tail_file(p, opts) or vm:tail_file(p)
    t:assert_eq(s:next(0.3), nil)
    append(p, "ab")
    t:assert_eq(s:read_until("b", 5), "ab")
    s:close()
    put(p, "0123456789")
  end
  local e = t:assert_raises(function() vm:tail_file(p, {start = "middle"}) end)
  t:assert_contains(e, 'vm:tail_file: opts.start = `middle` (expected "beginning"|"end"|number)')
  e = t:assert_raises(function() vm:tail_file(p, {start = true}) end)
  t:assert_contains(e, 'vm:tail_file: opts.start = `true` (expected "beginning"|"end"|number)')
  e = t:assert_raises(function() vm:tail_file(p, {start = math.huge}) end)
  t:assert_contains(e, "vm:tail_file: opts.start = `")
  e = t:assert_raises(function() vm:tail_file("/nope/missing") end)
  t:assert_contains(e, 'vm:tail_file("/nope/missing"): No such file or directory (os error 2, ENOENT)')
end)

test("kind, detail, creation_site", function(t)
  local s = vm:tail_file("/tmp/start.txt"); local line = debug.getinfo(1, "l").currentline
  t:assert_eq(s:kind(), "tail_file")
  t:assert_eq(s:detail(), '"/tmp/start.txt"')
  local site = s:creation_site()
  t:assert(site ~= nil, "creation_site is nil")
  t:assert_contains(site.file, "streams.test.lua")
  t:assert_eq(site.line, line)
  t:assert_contains(tostring(s), "tail_file")
  t:assert_eq(s == s, true)
end)

test("10000 lines arrive in order", function(t)
  local p = "/tmp/big.txt"
  put(p, "")
  local s = vm:tail_file(p)
  vm:run("for i in $(seq 1 10000); do echo line$i; done >> " .. p):assert_ok()
  local all = s:read_until("line10000\n", 60)
  local n = 0
  for l in all:gmatch("([^\n]*)\n") do
    n = n + 1
    if l ~= "line" .. n then
      t:fail("line " .. n .. " is `" .. l .. "`")
    end
  end
  t:assert_eq(n, 10000)
  t:assert_eq(s:next(0.2), nil)
end)

test("read_until leaves the rest for next", function(t)
  local p = "/tmp/ru.txt"
  put(p, "")
  local s = vm:tail_file(p)
  append(p, "hello world\nrest")
  t:assert_eq(s:read_until("world", 5), "hello world")
  t:assert_eq(s:next(), "\nrest")
  t:assert_eq(s:next(0), nil)
  -- a second match within pending, without any read
  append(p, "a1b2c3")
  t:assert_eq(s:read_until("1"), "a1")
  t:assert_eq(s:read_until("2", 0), "b2")
  t:assert_eq(s:read_until("3", 0), "c3")
end)

test("timeouts keep the bytes read so far", function(t)
  local p = "/tmp/to.txt"
  put(p, "")
  local s = vm:tail_file(p)
  append(p, "abcdef")
  local e = t:assert_raises(function() s:expect("NEVER", 0.3) end)
  t:assert_contains(e, "expect timed out waiting for `NEVER`")
  e = t:assert_raises(function() s:read_until("ALSO-NEVER", 0) end)
  t:assert_contains(e, "read_until timed out waiting for `ALSO-NEVER`")
  t:assert_eq(s:next(0), "abcdef")
  append(p, "xxSTARTyy")
  t:assert_eq(s:expect("START", 5), nil)
  t:assert_eq(s:next(1), "yy")
  e = t:assert_raises(function() s:next(-1) end)
  t:assert_contains(e, "must be a finite, non-negative number")
  e = t:assert_raises(function() s:read_until(5) end)
  t:assert_contains(e, "pattern must be a string")
end)

test("drain", function(t)
  local p = "/tmp/dr.txt"
  put(p, "")
  local s = vm:tail_file(p)
  t:assert_eq(#s:drain(0), 0)
  append(p, "one\n")
  append(p, "two\n")
  s:read_until("o", 5) -- "o" of "one", leaving pending
  local got = table.concat(s:drain())
  t:assert_eq(got, "ne\ntwo\n")
  t:assert_eq(#s:drain(0.1), 0)
  s:close()
  t:assert_eq(#s:drain(), 0)
end)

test("fd_stream and file:tail_stream", function(t)
  local p = "/tmp/fd.txt"
  put(p, "xyz")
  local f = vm:open_file(p, {read = true})
  local s = vm:fd_stream(f)
  t:assert_eq(s:kind(), "fd_stream")
  t:assert_eq(s:detail(), tostring(f:fd()))
  t:assert_eq(s:read_until("z", 5), "xyz")
  local s2 = vm:fd_stream(f:fd())
  t:assert_eq(s2:kind(), "fd_stream")
  s2:close()
  f:seek(1)
  local ts = f:tail_stream()
  t:assert_eq(ts:kind(), "file_tail_stream")
  t:assert_eq(ts:detail(), '"/tmp/fd.txt"')
  t:assert_eq(ts:read_until("z", 5), "yz")
  append(p, "more")
  t:assert_eq(ts:read_until("more", 5), "more")
  f:close()
  local e = t:assert_raises(function() vm:fd_stream(f) end)
  t:assert_contains(e, "vm:fd_stream: file is closed")
  e = t:assert_raises(function() vm:fd_stream("x") end)
  t:assert_contains(e, "vm:fd_stream expected fd or File, got string")
  e = t:assert_raises(function() vm:fd_stream(0) end)
  t:assert_contains(e, "vm:fd_stream")
end)

test("console read", function(t)
  local c = vm:console()
  local s = c:read()
  t:assert_eq(s:kind(), "console_read")
  t:assert_eq(s:detail(), "vm=s")
  vm:run("echo CONSOLE-MARK-1 > /dev/console"):assert_ok()
  s:expect("CONSOLE-MARK-1", 10)
  local log = c:read_log()
  t:assert_contains(log, "CONSOLE-MARK-1")
  -- the retained log first: everything up to the mark, from the log's start
  local b = c:read({start = "beginning"})
  local upto = b:read_until("CONSOLE-MARK-1", 5)
  t:assert_eq(upto, log:sub(1, #upto))
  -- a fresh "end" stream sees none of it
  local e2 = c:read({start = "end"})
  t:assert_eq(e2:next(0.2), nil)
  local e = t:assert_raises(function() c:read({start = "middle"}) end)
  t:assert_contains(e, "console:read: opts.start = `middle`")
  s:close()
  e = t:assert_raises(function() s:read_until("x") end)
  t:assert_contains(e, "console closed")
  t:assert_eq(s:next(), nil)
end)

test("console chunks are at most 64 KiB", function(t)
  t:assert(vm:console() == vm:console(), "two vm:console() handles are ==")
  t:assert_eq(tostring(vm:console()), "console(vm=" .. vm:name() .. ")")
  local s = vm:console():read()
  t:assert_eq(select(2, tostring(s):gsub("vm=", "")), 1)
  vm:run("head -c 150000 /dev/zero | tr '\\0' x > /dev/console; echo BIG-END > /dev/console"):assert_ok()
  local got, frames = {}, 0
  while true do
    local f = s:next(10)
    t:assert(f ~= nil, "console stream ended early")
    t:assert(#f <= 65536, "frame of " .. #f .. " bytes")
    frames = frames + 1
    got[#got + 1] = f
    if table.concat(got):find("BIG-END", 1, true) then break end
  end
  local all = table.concat(got)
  local _, xs = all:gsub("x", "")
  t:assert(xs >= 150000, "only " .. xs .. " x")
  s:close()
  -- the retained log (> 150 KB now) comes in 64 KiB chunks
  local b = vm:console():read({start = "beginning"})
  t:assert_eq(#b:next(1), 65536)
  t:assert_eq(#b:next(1), 65536)
  b:close()
end)

test("open_stream_count and close", function(t)
  local before = vm:open_stream_count()
  t:assert_eq(before, 0)
  t:assert_eq(vm:is_quiescent(), true)
  local s = vm:tail_file("/tmp/start.txt")
  local c = vm:console():read()
  t:assert_eq(vm:open_stream_count(), 2)
  t:assert_eq(vm:is_quiescent(), false)
  s:close()
  s:close()
  t:assert_eq(vm:open_stream_count(), 1)
  t:assert_eq(s:eof(), true)
  t:assert_eq(s:next(), nil)
  local e = t:assert_raises(function() s:read_until("x") end)
  t:assert_contains(e, "stream closed")
  e = t:assert_raises(function() s:expect("x") end)
  t:assert_contains(e, "stream closed")
  t:assert_eq(c:eof(), false)
  -- left open: the test scope closes them
  vm:tail_file("/tmp/start.txt")
  t:assert_eq(vm:open_stream_count(), 2)
end)

test("the test scope closed the streams", function(t)
  t:assert_eq(vm:open_stream_count(), 0)
  t:assert_eq(vm:is_quiescent(), true)
end)

test("streams end on reset; console streams survive it", function(t)
  local p = "/tmp/reset.txt"
  put(p, "")
  local s = vm:tail_file(p)
  local c = vm:console():read()
  append(p, "before-x")
  t:assert_eq(s:read_until("before", 5), "before")
  vm:reset()
  -- pending bytes survive the end of the stream
  t:assert_eq(s:eof(), false)
  t:assert_eq(s:next(), "-x")
  t:assert_eq(s:next(1), nil)
  t:assert_eq(s:eof(), true)
  local e = t:assert_raises(function() s:read_until("x", 1) end)
  t:assert_contains(e, "stream EOF")
  t:assert_eq(vm:open_stream_count(), 1)
  vm:run("echo AFTER-RESET-MARK > /dev/console"):assert_ok()
  c:expect("AFTER-RESET-MARK", 10)
  t:assert_eq(c:eof(), false)
end)

test("console streams end when QEMU exits", function(t)
  local c = vm:console():read()
  put("/tmp/last.txt", "x")
  local tail = vm:tail_file("/tmp/last.txt")
  t:assert_eq(vm:open_stream_count(), 2)
  vm:shutdown()
  -- nothing left to read: neither counts as open any more
  t:assert_eq(vm:open_stream_count(), 0)
  t:assert_eq(tail:next(), nil)
  t:assert_eq(tail:eof(), true)
  t:assert_eq(#c:drain(5) >= 0, true)
  t:assert_eq(c:eof(), true)
  t:assert_eq(c:next(), nil)
end)
