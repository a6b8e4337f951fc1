-- Observability and debugging. `meta.spec` is carried to the event stream,
-- so `provium --coverage` (or `provium-coverage --from events.bin`) counts
-- outcomes per spec section. Every booted VM re-serves its serial console
-- on a unix socket; `--keep-failed` prints it for the VMs of failed tests,
-- with the `provium repl --attach` line that opens a prompt on them.
local vm = provium:vm("observed", "linux")

test("the console socket exists once the VM is booted", {spec = "10-lua-api.md §5.6"}, function(t)
  t:assert_eq(vm:console_socket_path(), nil)
  vm:boot()
  local path = vm:console_socket_path()
  t:assert(type(path) == "string" and path:match("con%.sock$") ~= nil, "a socket path, got " .. tostring(path))
  t:assert_eq(vm:console_socket_path(), path)
end)

test("a spec can name several sections", {spec = {"20-cli-config.md §3.7", "30-runtime.md C7"}}, function(t)
  t:assert_eq(vm:run("echo covered").stdout, "covered\n")
end)
