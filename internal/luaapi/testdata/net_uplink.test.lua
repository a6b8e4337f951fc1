-- The uplink: a guest reaches a server the Go test runs on the host's
-- 127.0.0.1 as host.provium, only while the uplink is on.
local lan = provium:bridge("lan")
local a = provium:vm("a", "linux", {memory = "256M", agent_timeout = 180})
lan:attach(a)
a:boot()
local port = assert(os.getenv("PROVIUM_TEST_HTTP_PORT"), "PROVIUM_TEST_HTTP_PORT")

-- An HTTP GET over busybox nc (the image's static busybox wget crashes in
-- glibc's static service lookup, whatever the address).
local host_ip
local function fetch(host)
  local r = a:run("printf 'GET /hello HTTP/1.0\r\nHost: host.provium\r\n\r\n' | timeout 10 nc -w 5 " .. (host or "host.provium") .. " " .. port)
  if r:ok() and not r.stdout:find("200 OK", 1, true) then
    error("unexpected answer: " .. r.stdout)
  end
  return r
end

test("no uplink, no host", function()
  assert(not fetch():ok(), "reached the host without an uplink")
end)

test("enable_uplink reaches the host's loopback", function()
  lan:enable_uplink()
  lan:enable_uplink() -- idempotent
  local r = fetch()
  r:assert_ok()
  assert(r.stdout:find("\r\n\r\nhello from the host\n$"), r.stdout)
  assert(a:run("ip route").stdout:find("default via", 1, true), "no default route")
  host_ip = a:read_file("/etc/hosts"):match("([%d.]+) host%.provium")
  assert(host_ip, "no host.provium entry")
  fetch(host_ip):assert_ok()
end)

test("disable_uplink cuts it again", function()
  lan:disable_uplink()
  assert(not fetch():ok(), "reached the host after disable_uplink")
  assert(not fetch(host_ip):ok(), "reached the host's address after disable_uplink")
  assert(not a:read_file("/etc/hosts"):find("host.provium", 1, true), "host.provium still in hosts")
end)
