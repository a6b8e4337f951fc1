-- Disks against real guests: boot-time scratch disks, the host-side Disk
-- API, guest-visible faults and power cuts through the NBD server.
-- agent_timeout: a loaded TCG machine can take well over 30 s to boot.

local function blk(n, ch) return string.rep(ch, 4096 * n) end

test("scratch disks: guest order, serials, mkfs and mount, host sector access", function(t)
  local vm = provium:vm("fs", "linux", {agent_timeout = 180, disks = {
    {id = "first", scratch = "16M"},
    {scratch = "32M", mediated = true},
  }}):boot()
  -- boot option disks in order: vda, vdb; serial = id (default boot<i>)
  t:assert_eq(vm:read_file("/sys/block/vda/serial"), "first")
  t:assert_eq(vm:read_file("/sys/block/vdb/serial"), "boot1")
  t:assert_eq(vm:run("cat /sys/block/vdb/size").stdout, "65536\n")

  local d = vm:disk("first")
  t:assert_eq(d:id(), "first")
  t:assert_eq(d:size(), 16 * 1024 * 1024)
  t:assert(vm:disk("first") == d, "handles of one disk are ==")
  local e = t:assert_raises(function() vm:disk("nope") end)
  t:assert_contains(e, "vm:disk: no disk `nope` attached to vm `fs`")

  vm:run("mke2fs -q /dev/vda"):assert_ok()
  vm:mkdir("/mnt/d", {parents = true})
  vm:run("mount -t ext2 /dev/vda /mnt/d"):assert_ok()
  vm:write_file("/mnt/d/hello", "hello from the guest")
  vm:run("sync && umount /mnt/d"):assert_ok()
  vm:run("mount -t ext2 /dev/vda /mnt/d"):assert_ok()
  t:assert_eq(vm:read_file("/mnt/d/hello"), "hello from the guest")
  vm:run("umount /mnt/d"):assert_ok()
  -- the host sees the ext2 superblock magic 0xEF53 at byte 1080
  local sb = d:read_sectors(2, 1)
  t:assert_eq(#sb, 512)
  t:assert_eq(sb:sub(57, 58), "\x53\xEF")
  -- host writes land verbatim where the guest reads them
  d:write_sectors(4000, "written by the host")
  t:assert_eq(vm:run("dd if=/dev/vda bs=512 skip=4000 count=1 iflag=direct 2>/dev/null | head -c 19").stdout,
    "written by the host")
  -- reads are short at the end
  t:assert_eq(#d:read_sectors(32767, 4), 512)

  -- plain disks refuse the mediated methods
  e = t:assert_raises(function() d:power_cut() end)
  t:assert_eq(e, "disk:power_cut: disk `first` is not mediated (declare it in boot opts disks with mediated=true)")
  e = t:assert_raises(function() d:fail_reads() end)
  t:assert_contains(e, "disk:fail_reads: disk `first` is not mediated")
end)

test("host-side fault_inject: texts, order, sorted active faults", function(t)
  local vm = provium:vm("hf", "linux", {agent_timeout = 180, disks = {{id = "x", scratch = "1M"}}}):boot()
  local d = vm:disk("x")
  local e = t:assert_raises(function() d:fault_inject("bogus") end)
  t:assert_eq(e, "disk:fault_inject: unknown mode `bogus` (valid: eio_read, eio_write, slow)")
  d:fault_inject("slow")
  d:fault_inject("eio_read")
  local af = d:active_faults()
  t:assert_eq(#af, 2)
  t:assert_eq(af[1], "eio_read")
  t:assert_eq(af[2], "slow")
  e = t:assert_raises(function() d:read_sectors(0, 1) end)
  t:assert_eq(e, "disk:read_sectors: EIO (fault_inject)")
  d:write_sectors(0, "ok") -- eio_read does not stop writes
  d:fault_inject("eio_write")
  e = t:assert_raises(function() d:write_sectors(0, "no") end)
  t:assert_eq(e, "disk:write_sectors: EIO (fault_inject)")
  d:clear_faults()
  t:assert_eq(#d:active_faults(), 0)
  t:assert_eq(d:read_sectors(0, 1):sub(1, 2), "ok")
  t:assert(not d:is_detached())

  -- a modelled disk: size only, sector ops need an image
  local m = vm:attach_disk({id = "model", size = 1024 * 1024})
  t:assert_eq(m:size(), 1024 * 1024)
  e = t:assert_raises(function() m:read_sectors(0, 1) end)
  t:assert_eq(e, "disk:read_sectors: no backing image — disk:with_image required")
  m:detach()
  t:assert(m:is_detached())
  e = t:assert_raises(function() m:write_sectors(0, "x") end)
  t:assert_eq(e, "disk:write_sectors: disk is detached")

  -- attach_disk with an image on an unbooted VM attaches it at the next boot
  local img = os.tmpname()
  local fh = io.open(img, "wb")
  fh:write(string.rep("I", 4096))
  fh:close()
  local later = provium:vm("later", "linux", {agent_timeout = 180})
  local ld = later:attach_disk({id = "staged", image = img})
  t:assert_eq(ld:size(), 4096)
  t:assert_eq(ld:read_sectors(0, 1), string.rep("I", 512))
  later:boot()
  t:assert_eq(later:read_file("/sys/block/vda/serial"), "staged")
  t:assert_eq(later:run("head -c 4 /dev/vda").stdout, "IIII")
  e = t:assert_raises(function() later:attach_disk({image = "/nonexistent/disk.img"}) end)
  t:assert_eq(e, "vm:attach_disk: image `/nonexistent/disk.img` does not exist: no such file or directory")
  later:shutdown()
  os.remove(img)
end)

test("mediated disk: guest-visible failures, ranges, delays", function(t)
  local vm = provium:vm("mf", "linux", {agent_timeout = 180, disks = {{id = "m", scratch = "8M", mediated = true}}}):boot()
  local d = vm:disk("m")
  local read = "dd if=/dev/vda of=/dev/null bs=4096 count=1 iflag=direct"
  vm:run(read):assert_ok()

  d:fail_reads()
  local r = vm:run(read)
  t:assert(not r:ok(), "read with fail_reads succeeded")
  t:assert_contains(r.stderr, "Input/output error")
  t:assert_eq(d:fault_policy().fail_reads, true)
  d:clear_policy()
  vm:run(read):assert_ok()

  d:fail_range(64, 8) -- the 4 KiB block at 32 KiB
  t:assert_eq(#d:fault_policy().fail_ranges, 1)
  t:assert_eq(d:fault_policy().fail_ranges[1].sector, 64)
  vm:run("dd if=/dev/vda of=/dev/null bs=4096 count=1 skip=7 iflag=direct"):assert_ok()
  t:assert(not vm:run("dd if=/dev/vda of=/dev/null bs=4096 count=1 skip=8 iflag=direct"):ok(),
    "read inside the failing range succeeded")
  vm:run("dd if=/dev/vda of=/dev/null bs=4096 count=1 skip=9 iflag=direct"):assert_ok()
  d:clear_policy()

  -- host fault_inject modes reach guest I/O on a mediated disk
  d:fault_inject("eio_read")
  t:assert(not vm:run(read):ok(), "eio_read did not reach the guest")
  d:clear_faults()
  vm:run(read):assert_ok()

  d:delay(100)
  t:assert_eq(d:fault_policy().delay_ms, 100)
  local clock = vm:clock()
  local before = clock:get_ns()
  vm:run("dd if=/dev/vda of=/dev/null bs=4096 count=3 skip=100 iflag=direct"):assert_ok()
  local ms = (clock:get_ns() - before) / 1e6
  t:assert(ms >= 300, "three delayed reads took only " .. ms .. " ms")
  d:delay(0)
  t:assert_eq(d:fault_policy().delay_ms, 0)

  d:fail_after(1)
  t:assert_eq(d:fault_policy().fail_after, 1)
  vm:run(read):assert_ok()
  t:assert(not vm:run(read):ok(), "fail_after(1): the second read succeeded")
  t:assert_eq(d:fault_policy().fail_after, 0)
  d:clear_policy()
  t:assert_eq(d:fault_policy().fail_after, nil)
end)

test("mediated disk: a power cut loses unflushed writes, flushed ones survive", function(t)
  local vm = provium:vm("pc", "linux", {agent_timeout = 180, disks = {{id = "m", scratch = "8M", mediated = true}}}):boot()
  local d = vm:disk("m")
  vm:write_file("/tmp/s", blk(1, "S"))
  vm:write_file("/tmp/u", blk(1, "U"))
  vm:run("dd if=/tmp/s of=/dev/vda bs=4096 oflag=direct conv=fsync"):assert_ok()
  vm:run("dd if=/tmp/u of=/dev/vda bs=4096 seek=1 oflag=direct"):assert_ok()
  t:assert(d:fault_policy().unflushed >= 1, "the unsynced write is not held")
  -- the host reads the committed image: the synced block is there, the
  -- unsynced one is not (yet)
  t:assert_eq(d:read_sectors(0, 8), blk(1, "S"))
  t:assert_eq(d:read_sectors(8, 8), string.rep("\0", 4096))
  local lost = d:power_cut()
  t:assert(lost >= 1, "power_cut dropped " .. lost .. " writes")
  t:assert_eq(d:fault_policy().unflushed, 0)
  vm:reset()
  t:assert_eq(vm:run("dd if=/dev/vda bs=4096 count=1 iflag=direct 2>/dev/null").stdout, blk(1, "S"))
  t:assert_eq(vm:run("dd if=/dev/vda bs=4096 count=1 skip=1 iflag=direct 2>/dev/null").stdout, string.rep("\0", 4096))
  -- host writes are durable
  d:write_sectors(16, "durable")
  t:assert_eq(d:power_cut(), 0)
  t:assert_eq(d:read_sectors(16, 1):sub(1, 7), "durable")
end)

test("hot-plug: attach_disk appears in the running guest, detach removes it", function(t)
  local vm = provium:vm("hp", "linux", {agent_timeout = 180}):boot()
  local d = vm:attach_disk({id = "hot", scratch = "4M", mediated = true})
  t:assert(vm:disk("hot") == d)
  wait_until(function() return vm:run("cat /sys/block/vda/serial 2>/dev/null").stdout == "hot" end,
    {timeout = 60, message = "hot-plugged disk never appeared as /dev/vda"})
  vm:write_file("/tmp/p", string.rep("H", 4096))
  vm:run("dd if=/tmp/p of=/dev/vda bs=4096 oflag=direct conv=fsync"):assert_ok()
  t:assert_eq(d:read_sectors(0, 8), string.rep("H", 4096))
  local img = vm:attach_disk({id = "plain", scratch = "2M"})
  wait_until(function() return vm:run("cat /sys/block/vdb/serial 2>/dev/null").stdout == "plain" end,
    {timeout = 60, message = "second hot-plugged disk never appeared"})
  d:detach()
  t:assert(d:is_detached())
  t:assert_eq(vm:run("test -e /sys/block/vda; echo $?").stdout, "1\n")
  local e = t:assert_raises(function() vm:attach_disk({id = "plain", scratch = "1M"}) end)
  t:assert_eq(e, "vm:attach_disk: vm `hp` already has a disk `plain`")
  img:detach()
  t:assert_eq(vm:run("ls /sys/block | grep -c vd; true").stdout, "0\n")
end)

test("snapshots carry disk contents; each restore gets a private copy", function(t)
  local A, B, C = blk(1, "A"), blk(1, "B"), blk(1, "C")
  local rd = "dd bs=4096 count=1 iflag=direct 2>/dev/null if="
  local vm = provium:vm("sn", "linux", {agent_timeout = 180, disks = {{id = "s", scratch = "8M"}, {id = "m", scratch = "8M", mediated = true}}}):boot()
  vm:write_file("/tmp/a", A)
  vm:write_file("/tmp/b", B)
  vm:write_file("/tmp/c", C)
  vm:run("dd if=/tmp/a of=/dev/vda bs=4096 oflag=direct conv=fsync"):assert_ok()
  vm:run("dd if=/tmp/a of=/dev/vdb bs=4096 oflag=direct"):assert_ok() -- not synced
  local snap = vm:snapshot()
  -- the source writes more after the snapshot
  vm:run("dd if=/tmp/b of=/dev/vda bs=4096 oflag=direct conv=fsync"):assert_ok()
  vm:run("dd if=/tmp/b of=/dev/vdb bs=4096 oflag=direct conv=fsync"):assert_ok()

  local c = provium:vm("sn2", "linux", {agent_timeout = 180})
  c:restore(snap)
  t:assert_eq(c:run(rd .. "/dev/vda").stdout, A)
  t:assert_eq(c:run(rd .. "/dev/vdb").stdout, A)
  t:assert_eq(c:read_file("/sys/block/vdb/serial"), "m")
  t:assert_eq(c:disk("s"):read_sectors(0, 8), A)
  t:assert_eq(c:disk("m"):read_sectors(0, 8), A)
  -- the clone's writes touch neither the snapshot nor the source
  c:run("dd if=/tmp/c of=/dev/vda bs=4096 oflag=direct conv=fsync"):assert_ok()
  t:assert_eq(c:disk("s"):read_sectors(0, 8), C)
  t:assert_eq(vm:disk("s"):read_sectors(0, 8), B)
  c:shutdown()
  c:restore(snap)
  t:assert_eq(c:run(rd .. "/dev/vda").stdout, A)

  -- lab snapshots record the disks and carry their data
  local ls = provium:snapshot()
  local fh = io.open(ls:path() .. "/lab.json")
  local idx = json.decode(fh:read("a"))
  fh:close()
  t:assert_eq(idx.vms[1].name, "sn")
  t:assert_eq(#idx.vms[1].disks, 2)
  t:assert_eq(idx.vms[1].disks[1].name, "s")
  t:assert_eq(idx.vms[1].disks[1].size_bytes, 8 * 1024 * 1024)
  t:assert_eq(idx.vms[1].disks[2].mediated, true)
  vm:run("dd if=/tmp/c of=/dev/vdb bs=4096 oflag=direct conv=fsync"):assert_ok()
  provium:restore(ls)
  t:assert_eq(vm:run(rd .. "/dev/vdb").stdout, B)
  t:assert_eq(vm:disk("m"):read_sectors(0, 8), B)

  -- a hot-plugged disk travels too: its contents, and its place, so the
  -- restored guest still has it as /dev/vdc
  c:shutdown()
  vm:attach_disk({id = "late", scratch = "1M"})
  wait_until(function() return vm:run("cat /sys/block/vdc/serial 2>/dev/null").stdout == "late" end,
    {timeout = 60, message = "hot-plugged disk never appeared as /dev/vdc"})
  vm:run("dd if=/tmp/a of=/dev/vdc bs=4096 oflag=direct conv=fsync"):assert_ok()
  local hs = vm:snapshot()
  vm:run("dd if=/tmp/b of=/dev/vdc bs=4096 oflag=direct conv=fsync"):assert_ok()
  vm:shutdown()
  vm:restore(hs)
  t:assert_eq(vm:read_file("/sys/block/vdc/serial"), "late")
  t:assert_eq(vm:run(rd .. "/dev/vdc").stdout, A)
  t:assert_eq(vm:disk("late"):read_sectors(0, 8), A)
  vm:run("dd if=/tmp/c of=/dev/vdc bs=4096 oflag=direct conv=fsync"):assert_ok()
  t:assert_eq(vm:disk("late"):read_sectors(0, 8), C)
  t:assert_eq(vm:run(rd .. "/dev/vda").stdout, B)
end)
