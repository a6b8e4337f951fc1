-- vm:run: the three call forms, options, and what a RunResult holds.
local vm = provium:vm("runner", "linux")
vm:boot()

test("shell form: one string runs under /bin/sh -c", function(t)
  local r = vm:run("echo out; echo err >&2; exit 3")
  t:assert_eq(r.stdout, "out\n")
  t:assert_eq(r.stderr, "err\n")
  t:assert_eq(r.exit_code, 3)
  t:assert_eq(r.status, "exited")
  t:assert_eq(r.timed_out, false)
  t:assert_eq(r:ok(), false)
  -- Pipes, globbing and variables work, because a shell runs it.
  t:assert_eq(vm:run("echo a b | wc -w").stdout, "2\n")
end)

test("argv form: a program and an array of arguments, no shell", function(t)
  local r = vm:run("echo", {"one", "two  spaces", "$HOME"})
  r:assert_ok()
  -- No shell: the argument is passed as is, nothing is expanded.
  t:assert_eq(r.stdout, "one two  spaces $HOME\n")
end)

test("opts form: args, env, cwd, stdin", function(t)
  -- With `args` the command is executed directly.
  local r = vm:run("printf", {args = {"%s-%s", "x", "y"}})
  t:assert_eq(r.stdout, "x-y")

  -- Without `args` it is a shell command: env is visible to it.
  r = vm:run("echo $GREETING", {env = {GREETING = "hello"}})
  t:assert_eq(r.stdout, "hello\n")

  -- env_clear: only the variables given in env are set.
  r = vm:run("env", {args = {}, env_clear = true, env = {ONLY = "1"}})
  t:assert_eq(r.stdout, "ONLY=1\n")

  r = vm:run("pwd", {cwd = "/tmp"})
  t:assert_eq(r.stdout, "/tmp\n")

  -- stdin is sent, then closed; binary bytes survive the round trip.
  r = vm:run("cat", {args = {}, stdin = "line\0with\255bytes"})
  t:assert_eq(r.stdout, "line\0with\255bytes")
  t:assert_eq(vm:run("wc -l", {stdin = "a\nb\nc\n"}).stdout:match("%d+"), "3")
end)

test("timeout kills the command's process group", function(t)
  local r = vm:run("sleep 60; echo never", {timeout = "500ms"})
  t:assert_eq(r.status, "timed_out")
  t:assert_eq(r.timed_out, true)
  t:assert_eq(r.exit_code, -2)
  t:assert_eq(r.stdout, "")
  -- timeout_ms is the same in milliseconds.
  t:assert_eq(vm:run("sleep 60", {timeout_ms = 300}).status, "timed_out")
end)

test("a signalled process", function(t)
  local r = vm:run("kill -TERM $$")
  t:assert_eq(r.status, "signalled")
  t:assert_eq(r.signal, 15)
  t:assert_eq(r.exit_code, -1)
  t:assert_eq(r:ok(), false)
end)

test("assert_ok raises with what the command did", function(t)
  local failed = vm:run("echo partial; echo broken >&2; exit 7")
  local msg = t:assert_raises(function() failed:assert_ok() end)
  t:assert_contains(msg, "command failed: status=exited code=7")
  t:assert_contains(msg, 'stdout="partial\\' .. "\n" .. '"')
  t:assert_contains(msg, "broken")

  local killed = vm:run("kill -KILL $$")
  msg = t:assert_raises(function() killed:assert_ok() end)
  t:assert_contains(msg, "status=signalled signal=9 (SIGKILL)")

  -- On success assert_ok returns the result, so calls chain.
  t:assert_eq(vm:run("echo fine"):assert_ok().stdout, "fine\n")
end)

test("bad options are errors naming the option", function(t)
  local msg = t:assert_raises(function() vm:run("true", {tiemout = 1}) end)
  t:assert_contains(msg, "vm:run: unknown option `tiemout`")
end)
