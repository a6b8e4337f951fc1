-- provium.reset_between_tests restores the file-scope lab after every test.
provium.reset_between_tests = true
t_vm = provium:vm("r", "linux", {memory = "256M", agent_timeout = 180}):boot()
t_vm:write_file("/tmp/keep", "here")

test("deletes the file", function(t)
  t_vm:unlink("/tmp/keep")
  t:assert_eq(t_vm:run("test -e /tmp/keep"):ok(), false)
end)

test("the file is back", function(t)
  t:assert_eq(t_vm:read_file("/tmp/keep"), "here")
  t_vm:shutdown()
end)

test("the shutdown is undone", function(t)
  t:assert_eq(t_vm:state(), "booted")
  t:assert_eq(t_vm:read_file("/tmp/keep"), "here")
end)

-- An unbooted VM comes back unbooted, with the options it was staged with.
cold = provium:vm("cold", "linux", {memory = "300M"})

test("boots the cold vm bigger", function(t)
  cold:boot({memory = "400M", kernel_cmdline_append = "provium.test=1"})
  t:assert_contains(cold:read_file("/proc/cmdline"), "provium.test=1")
end)

test("the cold vm is created again, with its staged size", function(t)
  t:assert_eq(cold:state(), "created")
  cold:boot()
  local kb = tonumber(cold:read_file("/proc/meminfo"):match("MemTotal:%s+(%d+)"))
  t:assert(kb < 300 * 1024, "MemTotal " .. kb .. " kB is more than the staged 300M")
  t:assert_eq(cold:read_file("/proc/cmdline"):find("provium.test=1", 1, true), nil)
end)
