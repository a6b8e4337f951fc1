-- The agent binary's own command line, as suites written for upstream run
-- it inside the guest: `--help` as a harmless exec that must succeed, and
-- `--port N` as a long-lived child to kill later.
-- agent_timeout: a loaded TCG machine can take well over 30 s to boot.
local vm = provium:vm("agentcli", "linux", {memory = "256M", agent_timeout = 180}):boot()

local AGENT = "/sbin/provium-agent"
local SYS_pidfd_open = 434

test("provium-agent --help prints its usage on stdout and exits 0", function(t)
  local w = vm:spawn_worker()
  local r = w:run(AGENT, {args = {"--help"}, timeout = "20s"})
  t:assert_eq(r.exit_code, 0, r.stderr)
  t:assert_contains(r.stdout, "usage: provium-agent")
  t:assert_contains(r.stdout, "--port N")
  t:assert_eq(r.stderr, "")
  t:assert_eq(vm:run(AGENT, {"--help"}).exit_code, 0)
  -- A wrong flag still fails, with the usage on stderr.
  r = vm:run(AGENT, {"--no-such-flag"})
  t:assert_eq(r.exit_code, 2)
  t:assert_contains(r.stderr, "usage: provium-agent")
end)

test("provium-agent --port N keeps running beside the agent until killed", function(t)
  local p = vm:run_async(AGENT, {args = {"--port", "7250"}})
  vm:run("sleep 1")
  t:assert_eq(p:status(), "running")
  t:assert_contains(vm:read_file("/proc/" .. p:pid() .. "/cmdline"), "--port\0" .. "7250")
  -- The agent that owns the virtio port still answers.
  t:assert_eq(vm:run("echo still here").stdout, "still here\n")
  p:kill()
  local r = p:wait("20s")
  t:assert_eq(r.status, "signalled")
  t:assert_eq(r.signal, 15)
  t:log("--port child said: " .. r.stderr)
  t:assert(r.stderr:find("listening on vsock port 7250", 1, true) or r.stderr:find("no vsock", 1, true),
    "stderr: " .. r.stderr)
  -- A worker's child, as the corpus opens it: its pidfd while it lives.
  local w = vm:spawn_worker()
  local q = w:run_async(AGENT, {"--port", "7251"})
  vm:run("sleep 1")
  t:assert_eq(q:status(), "running")
  local fd = w:syscall(SYS_pidfd_open, q:pid(), 0)
  t:assert(fd.ret >= 0, "pidfd_open of the --port child: errno " .. fd.errno)
  q:kill("kill")
  t:assert_eq(q:wait("20s").signal, 9)
  t:assert_eq(vm:run("echo still here").stdout, "still here\n")
end)
