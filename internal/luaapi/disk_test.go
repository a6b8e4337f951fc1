package luaapi_test

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDisksOnARealGuest(t *testing.T) {
	res := runGuestFile(t, "disk.test.lua")
	wantTests(t, res, 6)
}

// TestDiskFixtureOnARealGuest: a vm fixture's scratch and mediated disks
// travel through the (compressed) fixture cache, and every user of the
// fixture gets its own copy.
func TestDiskFixtureOnARealGuest(t *testing.T) {
	r := newFixtureRun(t)
	files := map[string]string{
		"fixtures/disky.fixture.lua": `local vm = provium:vm("disky", "linux", {memory = "256M", agent_timeout = 180,
  disks = {{id = "s", scratch = "4M"}, {id = "m", scratch = "4M", mediated = true}}}):boot()
vm:disk("s"):write_sectors(10, "on the scratch disk")
vm:run("printf 'on the mediated disk' | dd of=/dev/vdb bs=512 seek=20 conv=sync,fsync 2>/dev/null"):assert_ok()
return vm:snapshot()
`,
		"disk_fixture.test.lua": `test("fixture disks", function(t)
  local a = provium:vm_fixture("fixtures/disky")
  local b = provium:vm_fixture("fixtures/disky")
  t:assert_eq(a:disk("s"):read_sectors(10, 1):sub(1, 19), "on the scratch disk")
  t:assert_eq(a:run("dd if=/dev/vdb bs=512 skip=20 count=1 2>/dev/null | head -c 20").stdout, "on the mediated disk")
  t:assert_eq(b:disk("m"):read_sectors(20, 1):sub(1, 20), "on the mediated disk")
  a:disk("s"):write_sectors(10, "changed in a")
  t:assert_eq(b:disk("s"):read_sectors(10, 1):sub(1, 19), "on the scratch disk")
  b:disk("m"):fail_reads()
  t:assert(not b:run("dd if=/dev/vdb of=/dev/null bs=4096 count=1 iflag=direct"):ok(), "restored mediated disk is not served by the NBD server")
end)
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(r.root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := &counts{}
	checkPassed(t, r.run(r.fixtures(c), "disk_fixture.test.lua"))
	// A new run (fresh hot copies) restores from the compressed cache entry.
	r.backend = newGuestBackend(t, r.cfg)
	c2 := &counts{}
	checkPassed(t, r.run(r.fixtures(c2), "disk_fixture.test.lua"))
	if c2.hit == 0 || c2.started != 0 {
		t.Fatalf("second run did not use the cache: %s", c2)
	}
}
