-- Disks: a scratch disk formatted in the guest, and a power-loss test on a
-- mediated disk (served by Provium's NBD server, which holds the guest's
-- writes until it flushes them).

test("format and mount a scratch disk", function(t)
  local vm = provium:vm("fs", "linux", {disks = {{id = "data", scratch = "16M"}}}):boot()
  -- the disk's id is its virtio serial: find it whatever the device order
  t:assert_eq(vm:read_file("/sys/block/vda/serial"), "data")
  vm:run("mke2fs -q /dev/vda"):assert_ok()
  vm:mkdir("/mnt/data")
  vm:run("mount -t ext2 /dev/vda /mnt/data"):assert_ok()
  vm:write_file("/mnt/data/note", "kept on disk")
  vm:run("umount /mnt/data"):assert_ok()
  -- the host reads the image directly: ext2's magic 0xEF53 at byte 1080
  t:assert_eq(vm:disk("data"):read_sectors(2, 1):sub(57, 58), "\x53\xEF")
end)

test("a power cut loses unsynced data, synced data survives", function(t)
  local vm = provium:vm("pc", "linux", {disks = {{id = "db", scratch = "16M", mediated = true}}}):boot()
  local disk = vm:disk("db")
  vm:run("mke2fs -q /dev/vda && mkdir -p /mnt/db && mount -t ext2 /dev/vda /mnt/db"):assert_ok()
  -- fsync (busybox `sync FILE`) ends in a device flush: durable
  vm:run("echo committed > /mnt/db/synced && sync && sync /mnt/db/synced"):assert_ok()
  -- O_DIRECT sends the data to the device but nothing flushes it, and the
  -- new file's metadata is still only in guest memory
  vm:run("dd if=/dev/urandom of=/mnt/db/unsynced bs=4096 count=4 oflag=direct 2>/dev/null"):assert_ok()
  t:assert(disk:fault_policy().unflushed > 0, "the direct write is not held")

  local lost = disk:power_cut() -- drops what the guest wrote but never flushed
  t:assert(lost > 0, "nothing was lost")
  vm:reset()
  vm:mkdir("/mnt/db", {parents = true})
  vm:run("mount -t ext2 -o ro /dev/vda /mnt/db"):assert_ok()
  t:assert_eq(vm:read_file("/mnt/db/synced"), "committed\n")
  t:assert(not vm:run("test -e /mnt/db/unsynced"):ok(), "unsynced data survived the power cut")
end)
