-- Guest files: whole-file helpers, directories, handles and batches.
local vm = provium:vm("files", "linux")
vm:boot()

test("write_file and read_file round-trip any bytes", function(t)
  vm:write_file("/tmp/hello.txt", "hello, guest\n")
  t:assert_eq(vm:read_file("/tmp/hello.txt"), "hello, guest\n")

  -- Lua strings are byte strings: NULs and high bytes are kept.
  local blob = "\0\1\2binary\0\255\254" .. string.rep("\0", 1000) .. "end"
  vm:write_file("/tmp/blob.bin", blob)
  local back = vm:read_file("/tmp/blob.bin")
  t:assert_eq(#back, #blob)
  t:assert(back == blob, "binary content changed")
  -- The guest sees the same bytes.
  t:assert_eq(vm:run("wc -c < /tmp/blob.bin").stdout:match("%d+"), tostring(#blob))

  -- write_file truncates.
  vm:write_file("/tmp/hello.txt", "short")
  t:assert_eq(vm:read_file("/tmp/hello.txt"), "short")
end)

test("stat describes files and directories", function(t)
  vm:write_file("/tmp/sized", string.rep("x", 1234))
  local st = vm:stat("/tmp/sized")
  t:assert_eq(st.size, 1234)
  t:assert_eq(st.entry_type, "file")
  t:assert_eq(st.perm, 420) -- 0644
  t:assert_eq(math.type(st.mtime_ns), "integer")
  t:assert(st.mtime > 0, "mtime is seconds since the epoch")

  t:assert_eq(vm:stat("/tmp").entry_type, "directory")
  t:assert_eq(vm:stat("/dev/null").entry_type, "char_device")
end)

test("mkdir, listdir, rename, unlink", function(t)
  vm:mkdir("/tmp/tree/a/b", {parents = true})
  vm:mkdir("/tmp/tree/a/b", {parents = true}) -- existing is fine with parents
  vm:mkdir("/tmp/tree/private", {perm = tonumber("700", 8)})
  t:assert_eq(vm:stat("/tmp/tree/private").perm, tonumber("700", 8))
  vm:write_file("/tmp/tree/z.txt", "z")
  vm:write_file("/tmp/tree/m.txt", "m")

  local names = {}
  for _, e in ipairs(vm:listdir("/tmp/tree")) do
    names[#names + 1] = e.name .. "=" .. e.entry_type
  end
  -- Sorted, without . and ..
  t:assert_eq(table.concat(names, " "), "a=directory m.txt=file private=directory z.txt=file")

  vm:rename("/tmp/tree/z.txt", "/tmp/tree/a/moved.txt")
  t:assert_eq(vm:read_file("/tmp/tree/a/moved.txt"), "z")

  vm:unlink("/tmp/tree/a/moved.txt")
  vm:unlink("/tmp/tree/a/b") -- an empty directory
  t:assert_eq(#vm:listdir("/tmp/tree/a"), 0)
end)

test("guest errors name the operation, the path and the errno", function(t)
  local msg = t:assert_raises(function() vm:read_file("/no/such/file") end)
  t:assert_contains(msg, 'vm:read_file("/no/such/file"): No such file or directory (os error 2, ENOENT)')
  msg = t:assert_raises(function() vm:unlink("/tmp/tree") end)
  t:assert_contains(msg, "vm:unlink(\"/tmp/tree\")")
end)

test("open_file gives a handle for partial reads, writes and seeks", function(t)
  local f = vm:open_file("/tmp/handle.bin", {read = true, write = true, create = true, truncate = true})
  t:assert(f:fd() > 0, "an open file has a guest fd")
  t:assert_eq(f:write("0123456789"), 10)
  t:assert_eq(f:tell(), 10)
  t:assert_eq(f:seek(2), 2)
  t:assert_eq(f:read(3), "234")
  t:assert_eq(f:seek(-2, "end"), 8)
  t:assert_eq(f:read_all(), "89")
  t:assert_eq(f:read(10), "") -- EOF is an empty string
  f:seek(0)
  f:write("\0\0")
  f:close()
  f:close() -- idempotent
  t:assert_eq(f:fd(), 0)
  t:assert_contains(t:assert_raises(function() f:read(1) end), "file is closed")
  t:assert_eq(vm:read_file("/tmp/handle.bin"), "\0\0" .. "23456789")

  -- append mode writes at the end whatever the cursor.
  local a = vm:open_file("/tmp/handle.bin", {append = true})
  a:write("!")
  a:close()
  t:assert_eq(vm:read_file("/tmp/handle.bin"):sub(-3), "89!")

  local msg = t:assert_raises(function() vm:open_file("/tmp/handle.bin", {}) end)
  t:assert_contains(msg, "vm:open_file: must specify at least one of `read`, `write`, `append`")
end)

test("batch sends several operations in one round trip", function(t)
  local res = vm:batch(function(b)
    b:mkdir("/tmp/batch", {parents = true})
    b:write_file("/tmp/batch/f", "batched")
    b:read_file("/tmp/batch/f")
    b:stat("/tmp/batch/f")
    b:run("cat /tmp/batch/f")
    b:read_file("/tmp/batch/missing")
    b:listdir("/tmp/batch")
  end)
  t:assert_eq(#res, 7)
  t:assert_eq(res[1].err, nil)
  t:assert_eq(res[3].ok, "batched")
  t:assert_eq(res[4].ok.size, 7)
  t:assert_eq(res[5].ok.stdout, "batched")
  -- A failing op does not stop the others.
  t:assert_eq(res[6].err, "No such file or directory (os error 2, ENOENT) (errno 2)")
  t:assert_eq(res[7].ok[1].name, "f")
end)
