-- Run twice at once (two files): each bridge `lan` must see only its own
-- guest's frames.
local lan = provium:bridge("lan")
-- Two boots at once on a loaded host: give the agent time.
local a = provium:vm("a", "linux", {memory = "256M", agent_timeout = 180})
lan:attach(a)
a:boot()

test("only my frames", function()
  local cap = lan:capture()
  -- Nobody answers: ARP broadcasts go out for the whole window.
  a:run("ping -c 4 -W 1 " .. lan:nic(a):ip():gsub("%.2$", ".77"))
  local dir = assert(os.getenv("PROVIUM_TEST_PCAP_DIR"))
  local f = assert(io.open(dir .. "/" .. a:nic("lan"):mac():gsub(":", "") .. ".pcap", "wb"))
  for _, chunk in ipairs(cap:drain(1)) do f:write(chunk) end
  f:close()
end)
