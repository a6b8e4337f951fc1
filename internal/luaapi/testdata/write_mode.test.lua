-- vm:write_file creates a file with one open(2) that carries its mode, as
-- upstream's agent does: a chmod follows only where the umask cleared bits
-- of the wanted mode. The real suite's stratafs creation test compares the
-- security descriptor of a file vm:write_file created with that of a file
-- made by a plain open(O_CREAT); under its security module a chmod changes
-- the descriptor. Here an inotify watch (IN_ATTRIB) shows every chmod.
-- agent_timeout: a loaded TCG machine can take well over 30 s to boot.
local vm = provium:vm("wmode", "linux", {memory = "256M", agent_timeout = 180})
vm:boot()

local SYS = {read = 0, umask = 95, inotify_add_watch = 254, inotify_init1 = 294}
local IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_CREATE = 0x2, 0x4, 0x8, 0x100
local IN_NONBLOCK = 0x800
local DIR = "/tmp/wmode"

-- watch(dir) returns a function that gives, per entry name, the union of
-- the event masks queued since its last call. The kernel queues an event
-- while the operation runs, so a returned write_file's events are there.
local function watch(t, dir)
  local w = vm:spawn_worker()
  local fd = w:syscall(SYS.inotify_init1, IN_NONBLOCK).ret
  t:assert(fd >= 0, "inotify_init1 failed")
  local r = w:syscall(SYS.inotify_add_watch, {args = {fd, 0, IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CREATE},
    bufs = {dir .. "\0"}, ptrs = {1}})
  t:assert(r.ret >= 0, "inotify_add_watch errno " .. r.errno)
  return function()
    local seen = {}
    while true do
      local rd = w:syscall(SYS.read, {args = {fd, 0, 4096}, bufs = {string.rep("\0", 4096)}, ptrs = {1}})
      if rd.ret < 0 then
        t:assert_eq(rd.errno, 11, "read of the inotify fd") -- EAGAIN: nothing more queued
        return seen
      end
      local buf, at = rd.out_bufs[1], 1
      while at <= rd.ret do
        local _, mask, _, len = string.unpack("<i4I4I4I4", buf, at)
        local name = buf:sub(at + 16, at + 15 + len):gsub("\0+$", "")
        seen[name] = (seen[name] or 0) | mask
        at = at + 16 + len
      end
    end
  end
end

local function fresh_dir()
  vm:run("rm -rf " .. DIR .. " && mkdir " .. DIR):assert_ok()
end

local function host_file(content)
  local p = os.tmpname()
  local f = assert(io.open(p, "wb"))
  f:write(content)
  f:close()
  return p
end

test("a file write_file creates gets its mode from open alone", function(t)
  fresh_dir()
  local events = watch(t, DIR)
  vm:write_file(DIR .. "/directly", "x")
  local ev = events().directly or 0
  t:assert(ev & IN_CREATE ~= 0 and ev & IN_CLOSE_WRITE ~= 0, "no create/close events seen: " .. ev)
  t:assert_eq(ev & IN_ATTRIB, 0, "write_file changed the new file's attributes after creating it")
  t:assert_eq(vm:stat(DIR .. "/directly").perm, 0x1a4) -- 0644
  -- Rewriting keeps the mode and the attributes.
  vm:write_file(DIR .. "/directly", "yy")
  ev = events().directly or 0
  t:assert(ev & IN_MODIFY ~= 0, "no modify event seen: " .. ev)
  t:assert_eq(ev & IN_ATTRIB, 0, "write_file changed an existing file's attributes")
  t:assert_eq(vm:read_file(DIR .. "/directly"), "yy")
end)

test("an explicit mode is exact: a chmod only where the umask cleared bits", function(t)
  fresh_dir()
  local events = watch(t, DIR)
  local src = host_file("#!/bin/sh\necho hi\n")
  vm:push_file(src, DIR .. "/wide", {mode = 511})  -- 0777: the umask 022 clears 0022
  vm:push_file(src, DIR .. "/narrow", {mode = 384}) -- 0600: the umask keeps it
  os.remove(src)
  local ev = events()
  t:assert_eq(vm:stat(DIR .. "/wide").perm, 511)
  t:assert_eq(vm:stat(DIR .. "/narrow").perm, 384)
  t:assert((ev.wide or 0) & IN_ATTRIB ~= 0, "0777 was not restored after the umask")
  t:assert_eq((ev.narrow or 0) & IN_ATTRIB, 0, "a chmod followed although open gave 0600")
  t:assert_eq(vm:run(DIR .. "/wide").stdout, "hi\n")
end)

test("the default mode is 0644 under a restrictive umask too", function(t)
  fresh_dir()
  local events = watch(t, DIR)
  -- The agent's umask (vm:syscall runs in the agent process).
  local old = vm:syscall(SYS.umask, 63).ret -- 077
  local ok, err = pcall(vm.write_file, vm, DIR .. "/masked", "x")
  vm:syscall(SYS.umask, old)
  t:assert(ok, err)
  t:assert_eq(vm:stat(DIR .. "/masked").perm, 0x1a4)
  t:assert((events().masked or 0) & IN_ATTRIB ~= 0, "0644 was not restored after the umask")
end)
