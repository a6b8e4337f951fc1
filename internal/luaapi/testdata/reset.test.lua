-- provium.reset_between_tests restores the file-scope lab after every test.
provium.reset_between_tests = true
t_vm = provium:vm("r", "linux", {memory = "256M"}):boot()
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
