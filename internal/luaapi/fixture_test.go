package luaapi_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/discover"
	"github.com/provium/provium/internal/fixture"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/guesttest"
	"github.com/provium/provium/internal/luaapi"
	"github.com/provium/provium/internal/result"
	"github.com/provium/provium/internal/runner"
)

// fixtureTree is a test root with fixtures, a helper and test files.
var fixtureTree = map[string]string{
	"helpers/setup.lua": `return {content = "v1"}`,
	"fixtures/base.fixture.lua": `local h = require("helpers.setup")
local vm = provium:vm("base", "linux", {memory = "256M", agent_timeout = 180}):boot()
vm:write_file("/tmp/fixture", h.content)
return vm:snapshot()
`,
	"fixtures/other.fixture.lua": `local vm = provium:vm("other", "linux", {memory = "256M", agent_timeout = 180}):boot()
vm:push_file("other.txt", "/tmp/other")
return vm:snapshot()
`,
	"fixtures/other.txt": "o",
	"fixtures/slow.fixture.lua": `local vm = provium:vm("slow", "linux", {memory = "256M", agent_timeout = 180}):boot()
if os.getenv("PROVIUM_FIXTURE_CHILD_ROOT") then vm:run("sleep 120") end
return vm:snapshot()
`,
	"fixtures/bad.fixture.lua": `return 42`,
	"fixtures/cluster.fixture.lua": `local a = provium:vm("a", "linux", {memory = "256M", agent_timeout = 180})
provium:vm("b", "linux", {memory = "256M", agent_timeout = 180})
provium:lab("inner"):vm("idle", "linux")
provium:bridge("lan"):attach({a, "b"})
provium:boot()
a:write_file("/tmp/who", "a")
return provium:snapshot()
`,
	"lab_fixture.test.lua": `test("lab fixtures", function(t)
  local c = provium:lab_fixture("fixtures/cluster")
  t:assert_eq(c:name(), "cluster")
  t:assert_eq(c.a:read_file("/tmp/who"), "a")
  t:assert_eq(c.b:state(), "booted")
  t:assert_eq(c.inner.idle:state(), "created")
  c.a:run("ping -c 3 -i 0.3 -W 5 b.lan"):assert_ok()
  local c2 = provium.lab_fixture("fixtures/cluster")
  t:assert_eq(c2:name(), "cluster-2")
  -- Each copy has its own switch: same names, same addresses, no crosstalk.
  c2.b:run("ping -c 3 -i 0.3 -W 5 a.lan"):assert_ok()
  t:assert_eq(c2.lan:nic(c2.a):ip(), c.lan:nic(c.a):ip())
  c2.a:write_file("/tmp/who", "changed")
  t:assert_eq(c.a:read_file("/tmp/who"), "a")
  local e = t:assert_raises(function() provium:vm_fixture("fixtures/cluster") end)
  t:assert_contains(e, "fixture ` + "`fixtures/cluster`" + ` is a lab fixture; use lab_fixture")
end)
`,
	"uses_base.test.lua": `test("uses the base fixture", function(t)
  local vm = provium:vm_fixture("fixtures/base")
  t:assert_eq(vm:name(), "base")
  t:assert_eq(vm:state(), "booted")
  t:assert_eq(vm:read_file("/tmp/fixture"), os.getenv("PROVIUM_TEST_CONTENT") or "v1")
end)
`,
	"two_copies.test.lua": `test("two independent copies in the calling scope", function(t)
  local a = provium:vm_fixture("fixtures/base")
  local b = provium.vm_fixture("fixtures/base.fixture.lua")
  t:assert_eq(a:name(), "base")
  t:assert_eq(b:name(), "base-2")
  b:write_file("/tmp/fixture", "changed")
  t:assert_eq(a:read_file("/tmp/fixture"), "v1")
  local e = t:assert_raises(function() provium.lab_fixture("fixtures/base") end)
  t:assert_contains(e, "fixture ` + "`fixtures/base`" + ` is a vm fixture; use vm_fixture")
  e = t:assert_raises(function() provium:vm_fixture("fixtures/nope") end)
  t:assert_contains(e, "fixture ` + "`fixtures/nope`" + ` not found in any test root")
  e = t:assert_raises(function() provium:vm_fixture("fixtures/bad") end)
  t:assert_contains(e, "fixture ` + "`fixtures/bad`" + ` failed to build: fixture ` + "`fixtures/bad`" + ` must return vm:snapshot() or provium:snapshot(), got number")
end)
test("the test scope's fixture VMs are gone", function(t)
  t:assert_eq(#provium:vm_names(), 0)
end)
`,
	"order1.test.lua": `test("x then y", function(t)
  t:assert_eq(provium:vm_fixture("fixtures/base"):read_file("/tmp/fixture"), "v1")
  t:assert_eq(provium:vm_fixture("fixtures/other"):read_file("/tmp/other"), "o")
end)
`,
	"order2.test.lua": `test("y then x", function(t)
  t:assert_eq(provium:vm_fixture("fixtures/other"):read_file("/tmp/other"), "o")
  t:assert_eq(provium:vm_fixture("fixtures/base"):read_file("/tmp/fixture"), "v1")
end)
`,
	"slow.test.lua": `test("slow", function(t) provium:vm_fixture("fixtures/slow") end)
`,
	"fixtures/node.fixture.lua": `local vm = provium:vm("node", "linux", {memory = "256M", agent_timeout = 180})
provium:bridge("lan"):attach(vm)
vm:boot()
vm:write_file("/tmp/who", "node")
return vm:snapshot()
`,
	"fixture_net.test.lua": `local function configured(t, vm, nic)
  local ifname = nic:ifname()
  t:assert(ifname ~= nil and ifname ~= "", "no guest interface for " .. vm:name())
  t:assert_eq(vm:read_file("/sys/class/net/" .. ifname .. "/address"), nic:mac() .. "\n")
  t:assert_contains(vm:run("ip -4 addr show dev " .. ifname).stdout, "inet " .. nic:ip() .. "/")
end

test("copies of a fixture join a bridge with the bridge's MACs, addresses and names", function(t)
  local a = provium:vm_fixture("fixtures/node")
  local b = provium:vm_fixture("fixtures/node")
  t:assert_eq(b:name(), "node-2")
  t:assert_eq(b:read_file("/tmp/who"), "node")
  local lan = provium:bridge("lan")
  lan:attach({a, b})
  local na, nb = a:nic("lan"), b:nic("lan")
  t:assert(na:mac() ~= nb:mac(), "the copies share a MAC")
  t:assert(na:ip() ~= nb:ip(), "the copies share an address")
  configured(t, a, na)
  configured(t, b, nb)
  a:run("ping -c 3 -i 0.3 -W 5 node-2.lan"):assert_ok()
  b:run("ping -c 3 -i 0.3 -W 5 node.lan"):assert_ok()
  -- a copy on the bridge snapshots and restores like any member
  local s = b:snapshot()
  b:shutdown()
  b:restore(s)
  configured(t, b, nb)
  a:run("ping -c 3 -i 0.3 -W 5 node-2.lan"):assert_ok()
end)
`,
}

func writeTree(t *testing.T, root string) {
	t.Helper()
	for name, content := range fixtureTree {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// counts records fixture events.
type counts struct {
	mu                          sync.Mutex
	started, waiting, done, hit int
	warnings                    []string
}

func (c *counts) events() luaapi.FixtureEvents {
	inc := func(p *int) { c.mu.Lock(); *p++; c.mu.Unlock() }
	return luaapi.FixtureEvents{
		Waiting:  func(string, string) { inc(&c.waiting) },
		Started:  func(string) { inc(&c.started) },
		Done:     func(string, time.Duration, uint64) { inc(&c.done) },
		CacheHit: func(string) { inc(&c.hit) },
	}
}

func (c *counts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("started=%d waiting=%d done=%d hit=%d warnings=%q", c.started, c.waiting, c.done, c.hit, c.warnings)
}

type fixtureRun struct {
	t       *testing.T
	cfg     *config.Config
	root    string
	backend *guest.Backend
}

// newFixtureRun prepares a root and a cache dir (PROVIUM_CACHE_DIR) and one
// guest backend (one run's hot copies).
func newFixtureRun(t *testing.T) *fixtureRun {
	root := t.TempDir()
	writeTree(t, root)
	t.Setenv("PROVIUM_CACHE_DIR", filepath.Join(t.TempDir(), "cache"))
	cfg := guesttest.Config(t)
	if err := os.MkdirAll(cfg.CacheDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	return &fixtureRun{t: t, cfg: cfg, root: root, backend: newGuestBackend(t, cfg)}
}

func newGuestBackend(t *testing.T, cfg *config.Config) *guest.Backend {
	b, err := guest.New(guest.Options{Config: cfg, ScratchRoot: guesttest.ScratchRoot(t), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// fixtures is a fresh process view: new keyer (re-reads sources) and cache.
func (r *fixtureRun) fixtures(c *counts) *runner.Fixtures {
	fx := runner.NewFixtures(r.cfg, runner.FixtureSetup{Roots: []string{r.root}, Accel: "tcg", Argv: []string{"provium"},
		Warn: func(l string) { c.mu.Lock(); c.warnings = append(c.warnings, l); c.mu.Unlock() }})
	fx.Events = c.events()
	return fx
}

func (r *fixtureRun) run(fx *runner.Fixtures, name string) *result.File {
	path := filepath.Join(r.root, name)
	f := discover.File{Display: name, RootRel: name, Abs: path, Canonical: path}
	return runner.RunFile(context.Background(), f, &runner.Options{
		Config: r.cfg, Roots: []string{r.root}, Backend: r.backend.ForFile, Fixtures: fx,
	})
}

func checkPassed(t *testing.T, res *result.File) {
	t.Helper()
	if res.HasChunkError {
		t.Errorf("%s: chunk error: %s", res.Path, res.ChunkError)
	}
	for _, tr := range res.Tests {
		if tr.Status != result.Passed {
			t.Errorf("%s: %s: %s: %s", res.Path, tr.Name, tr.Status, tr.Message)
		}
	}
}

func TestFixturesOnARealGuest(t *testing.T) {
	r := newFixtureRun(t)

	// One build, hit by four files running in parallel.
	c := &counts{}
	fx := r.fixtures(c)
	var wg sync.WaitGroup
	results := make([]*result.File, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = r.run(fx, "uses_base.test.lua")
		}()
	}
	wg.Wait()
	for _, res := range results {
		checkPassed(t, res)
	}
	if c.started != 1 || c.waiting != 3 || c.hit != 3 {
		t.Errorf("four parallel files: %s, want exactly one build and three waits", c)
	}
	baseKey, err := fx.Keyer.Key("fixtures/base")
	if err != nil {
		t.Fatal(err)
	}
	entry := fx.Cache.EntryPath(fixture.KindVM, baseKey)
	if err := fixture.CheckVMEntry(entry); err != nil {
		t.Fatalf("cache entry: %v", err)
	}

	// Copies in the calling scope, names -2, errors; the entry is hit.
	c = &counts{}
	checkPassed(t, r.run(r.fixtures(c), "two_copies.test.lua"))
	if c.started != 1 || c.hit != 2 { // the one build is fixtures/bad
		t.Errorf("two copies: %s", c)
	}

	// Lab fixtures: a sub-lab per call, named after the fixture.
	c = &counts{}
	checkPassed(t, r.run(r.fixtures(c), "lab_fixture.test.lua"))
	if c.started != 1 || c.hit != 1 {
		t.Errorf("lab fixture: %s", c)
	}

	// Reordering two references builds nothing new the second time.
	c = &counts{}
	checkPassed(t, r.run(r.fixtures(c), "order1.test.lua"))
	if c.started != 1 {
		t.Errorf("order1: %s, want one build (fixtures/other)", c)
	}
	c = &counts{}
	checkPassed(t, r.run(r.fixtures(c), "order2.test.lua"))
	if c.started != 0 || c.hit != 2 {
		t.Errorf("order2: %s, want no build", c)
	}

	// Editing the required helper rebuilds the fixture that requires it.
	if err := os.WriteFile(filepath.Join(r.root, "helpers/setup.lua"), []byte(`return {content = "v2"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PROVIUM_TEST_CONTENT", "v2")
	c = &counts{}
	fx = r.fixtures(c)
	checkPassed(t, r.run(fx, "uses_base.test.lua"))
	if c.started != 1 {
		t.Errorf("after editing the helper: %s, want a rebuild", c)
	}
	newKey, _ := fx.Keyer.Key("fixtures/base")
	if newKey == baseKey {
		t.Error("editing the helper did not change the key")
	}

	// A truncated entry is reported, evicted and rebuilt.
	entry = fx.Cache.EntryPath(fixture.KindVM, newKey)
	st, err := os.Stat(entry)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(entry, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	c = &counts{}
	checkPassed(t, r.run(r.fixtures(c), "uses_base.test.lua"))
	if c.started != 1 || len(c.warnings) != 1 || !strings.Contains(c.warnings[0], "provium: fixture `fixtures/base` cache entry corrupt (") ||
		!strings.HasSuffix(c.warnings[0], "); evicting and rebuilding") {
		t.Errorf("truncated entry: %s", c)
	}
	if err := fixture.CheckVMEntry(entry); err != nil {
		t.Errorf("rebuilt entry: %v", err)
	}
}

// The child side of TestKillDuringBuild: run slow.test.lua, whose fixture
// build never finishes on its own.
func TestFixtureBuildChild(t *testing.T) {
	root := os.Getenv("PROVIUM_FIXTURE_CHILD_ROOT")
	if root == "" {
		t.Skip("helper process for TestKillDuringBuild")
	}
	cfg := guesttest.Config(t)
	r := &fixtureRun{t: t, cfg: cfg, root: root, backend: newGuestBackend(t, cfg)}
	r.run(r.fixtures(&counts{}), "slow.test.lua")
}

func TestKillDuringBuild(t *testing.T) {
	r := newFixtureRun(t)
	c := &counts{}
	fx := r.fixtures(c)
	key, err := fx.Keyer.Key("fixtures/slow")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFixtureBuildChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PROVIUM_FIXTURE_CHILD_ROOT="+r.root)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// Wait until the child stamped the lock (it is building), then give it
	// time to boot and start packing nothing.
	lock := fx.Cache.LockPath(fixture.KindVM, key)
	stamp := "pid=" + strconv.Itoa(cmd.Process.Pid) + " "
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, _ := os.ReadFile(lock)
		if strings.HasPrefix(string(b), stamp) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child never stamped %s (%q)", lock, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(4 * time.Second)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if _, err := os.Stat(fx.Cache.EntryPath(fixture.KindVM, key)); !os.IsNotExist(err) {
		t.Fatalf("an entry exists after kill -9 during the build: %v", err)
	}
	// The next run builds (same key): the kernel dropped the flock.
	l, ok, err := fx.Cache.TryAcquire(fixture.KindVM, key)
	if err != nil || !ok {
		t.Fatalf("the killed build's lock is still held: ok=%v err=%v", ok, err)
	}
	l.Release()
	checkPassed(t, r.run(r.fixtures(c), "slow.test.lua"))
	if c.started != 1 {
		t.Errorf("after the kill: %s, want one build", c)
	}
}

// TestFixtureCopiesJoinABridgeOnRealGuests: a vm fixture built on a bridge
// comes back with its card on no bridge; bridge:attach takes the card over
// with the bridge's MAC and address, so two copies ping each other by name.
func TestFixtureCopiesJoinABridgeOnRealGuests(t *testing.T) {
	r := newFixtureRun(t)
	c := &counts{}
	checkPassed(t, r.run(r.fixtures(c), "fixture_net.test.lua"))
	if c.started != 1 || c.hit != 1 {
		t.Errorf("fixture copies on a bridge: %s, want one build and one hit", c)
	}
}
