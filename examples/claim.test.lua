-- Scheduling: declare the file's peak with provium:claim so the pool
-- reserves it whole when the file is dispatched. Every running VM is
-- charged its memory + 100 MiB and its vCPUs; with a claim, the file's
-- VMs draw from it and never wait on other files.
provium:claim({memory = "800M", cpus = 2})

test("two VMs inside the claim", function(t)
  local a = provium:vm("a", "linux", {memory = "256M"})
  local b = provium:vm("b", "linux", {memory = "256M"})
  provium:boot() -- one request for both: a lab never boots half-way
  t:assert_eq(a:run("echo a").stdout, "a\n")
  t:assert_eq(b:run("echo b").stdout, "b\n")
end)

test("three do not fit, so none boots", function(t)
  for _, name in ipairs({"x", "y", "z"}) do
    provium:vm(name, "linux", {memory = "256M"})
  end
  local err = t:assert_raises(function() provium:boot() end)
  t:assert_contains(err, "raise provium:claim to the file's peak")
  t:assert_eq(provium:vm("x"):state(), "created")
end)
