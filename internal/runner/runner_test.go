package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/result"
)

// runSource writes src as a test file and runs it.
func runSource(t testing.TB, src string, opts *Options) *result.File {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "a.test.lua")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if opts == nil {
		opts = &Options{}
	}
	if opts.Config == nil {
		opts.Config = &config.Config{Profiles: map[string]*config.Profile{"linux": {Name: "linux"}}}
	}
	return RunFile(context.Background(), File{Display: "a.test.lua", RootRel: "a.test.lua", Abs: path, Canonical: path}, opts)
}

type want struct {
	name, status, message string
}

func check(t *testing.T, f *result.File, wants []want) {
	t.Helper()
	if f.HasChunkError {
		t.Fatalf("chunk error: %s", f.ChunkError)
	}
	if len(f.Tests) != len(wants) {
		t.Fatalf("got %d tests, want %d: %+v", len(f.Tests), len(wants), f.Tests)
	}
	for i, w := range wants {
		got := f.Tests[i]
		if got.Name != w.name || string(got.Status) != w.status || got.Message != w.message {
			t.Errorf("test %d = {%q %q %q}, want {%q %q %q}", i, got.Name, got.Status, got.Message, w.name, w.status, w.message)
		}
	}
}

func TestAssertionsAndOutcomes(t *testing.T) {
	f := runSource(t, `
test("pass", function(t) t:assert(true); t:assert_eq(1, 1); t:assert_neq(1, 2); t:assert_contains("hello", "ell") end)
test("eq", function(t) t:assert_eq(1, 2) end)
test("eq msg", function(t) t:assert_eq("a", "b", "names") end)
test("neq", function(t) t:assert_neq(3, 3) end)
test("contains", function(t) t:assert_contains("abc", "x") end)
test("contains types", function(t) t:assert_contains(1, "x") end)
test("assert", function(t) t:assert(false) end)
test("assert msg", function(t) t:assert(nil, "custom") end)
test("fail", function(t) t:fail() end)
test("fail msg", function(t) t:fail("boom") end)
test("raises ok", function(t)
  local e = t:assert_raises(function() t:assert_eq(1, 2) end)
  t:assert_contains(e, "1 ~= 2")
end)
test("raises missing", function(t) t:assert_raises(function() end) end)
test("sticky", function(t)
  pcall(function() t:assert_eq(1, 2, "first") end)
  pcall(function() t:assert_eq(3, 4, "second") end)
end)
test("skip", function(t) t:skip("not today") end)
test("skip after failure", function(t) pcall(function() t:fail("early") end); t:skip("late") end)
test("error", function(t) error("plain") end)
test("log", function(t) t:log("one"); t:log(2) end)
`, nil)
	check(t, f, []want{
		{"pass", "passed", ""},
		{"eq", "failed", "a.test.lua:3: assert_eq failed: 1 ~= 2"},
		{"eq msg", "failed", "a.test.lua:4: names: a ~= b"},
		{"neq", "failed", "a.test.lua:5: assert_neq failed: 3 == 3"},
		{"contains", "failed", "a.test.lua:6: assert_contains failed: x not found in: abc"},
		{"contains types", "failed", "a.test.lua:7: assert_contains: both arguments must be strings (slice 2 limit)"},
		{"assert", "failed", "a.test.lua:8: assertion failed"},
		{"assert msg", "failed", "a.test.lua:9: custom"},
		{"fail", "failed", "a.test.lua:10: explicit failure (t:fail)"},
		{"fail msg", "failed", "a.test.lua:11: boom"},
		{"raises ok", "passed", ""},
		{"raises missing", "failed", "a.test.lua:16: assert_raises: expected to raise"},
		{"sticky", "failed", "first: 1 ~= 2"},
		{"skip", "skipped", "not today"},
		{"skip after failure", "failed", "early"},
		{"error", "failed", "a.test.lua:23: plain"},
		{"log", "passed", ""},
	})
	if got := strings.Join(f.Tests[16].Log, ","); got != "one,2" {
		t.Errorf("log = %q", got)
	}
	if f.Tests[1].Line != 3 || f.Tests[1].DeclLine != 3 {
		t.Errorf("lines = %d/%d", f.Tests[1].Line, f.Tests[1].DeclLine)
	}
}

func TestTimeoutsStopRunawayTests(t *testing.T) {
	f := runSource(t, `
provium.timeout = "200ms"
test("loop", function(t) while true do end end)
test("after", function(t) end)
`, nil)
	check(t, f, []want{
		{"loop", "failed", "test timed out after 200ms"},
		{"after", "failed", "lab torn down by timeout of test `loop`"},
	})
	f = runSource(t, `
test("meta wins", {timeout = 0.1}, function(t) while true do pcall(function() while true do end end) end end)
`, &Options{FileTimeout: 10 * time.Second})
	check(t, f, []want{{"meta wins", "failed", "test timed out after 100ms"}})

	f = runSource(t, `
test("first", function(t) end)
test("sleeps", function(t) wait_until(function() return false end, {timeout = 60}) end)
test("never", function(t) end)
`, &Options{FileTimeout: 300 * time.Millisecond})
	if !f.TimedOut {
		t.Fatal("file not timed out")
	}
	check(t, f, []want{
		{"first", "passed", ""},
		{"sleeps", "failed", "file timed out after 300ms"},
		{"never", "failed", "not run: file timed out"},
	})
}

func TestWaitUntil(t *testing.T) {
	f := runSource(t, `
test("ok", function(t)
  local n = 0
  local v = wait_until(function() n = n + 1; return n >= 3 and "done" end, {interval = 0})
  t:assert_eq(v, "done")
end)
test("timeout", function(t) wait_until(function() return false end, {timeout = "50ms", interval = "10ms", desc = "the thing"}) end)
test("default desc", function(t) wait_until(function() return nil end, {timeout = 0}) end)
test("pred error", function(t) wait_until(function() error({code = 7}) end) end)
test("bad string", function(t) wait_until(function() return true end, {timeout = "soon"}) end)
`, nil)
	check(t, f, []want{
		{"ok", "passed", ""},
		{"timeout", "failed", "wait_until: the thing not met within 0.05s"},
		{"default desc", "failed", "wait_until: condition not met within 0s"},
		{"pred error", "failed", f.Tests[3].Message},
		{"bad string", "failed", "wait_until: bad timeout string `soon` (expected number with ms/s/m/h suffix)"},
	})
	// The predicate's own error value (a table) propagated unchanged.
	if !strings.HasPrefix(f.Tests[3].Message, "table: ") {
		t.Errorf("predicate error = %q", f.Tests[3].Message)
	}
}

func TestChunkErrorsAndDeclarations(t *testing.T) {
	f := runSource(t, "test('a', function() end)\nerror('top')\n", nil)
	if !f.HasChunkError || f.ChunkError != "a.test.lua:2: top" || f.ChunkErrorLine != 2 {
		t.Fatalf("chunk error = %q line %d", f.ChunkError, f.ChunkErrorLine)
	}
	f = runSource(t, "test('a', function() end)\ntest('a', function() end)\n", nil)
	if !strings.Contains(f.ChunkError, "test: duplicate name `a` in this file") {
		t.Fatalf("duplicate: %q", f.ChunkError)
	}
	f = runSource(t, "test('a', 5)", nil)
	if !strings.Contains(f.ChunkError, "test(name, [meta,] fn): bad arguments") {
		t.Fatalf("bad args: %q", f.ChunkError)
	}
	f = runSource(t, "test('a', function() end", nil)
	if !f.HasChunkError || !strings.Contains(f.ChunkError, "a.test.lua:1:") {
		t.Fatalf("syntax: %q", f.ChunkError)
	}
	f = runSource(t, "todo('later')\ntest('a', function() error('x') end)\ntest('b', {skip = true}, function() end)", nil)
	check(t, f, []want{{"a", "skipped", "later"}, {"b", "skipped", "later"}})
	f = runSource(t, "test('inner', function(t) t:assert_raises(function() test('x', function() end) end) end)", nil)
	check(t, f, []want{{"inner", "passed", ""}})
	f = runSource(t, "test('m', {tags = {print}}, function() end)", nil)
	if !strings.Contains(f.ChunkError, "meta.tags: unsupported value") {
		t.Fatalf("meta: %q", f.ChunkError)
	}
}

func TestLabGraphFromLua(t *testing.T) {
	f := runSource(t, `
local a = provium:vm("a", "linux", {memory = "1G", cpus = 2})
test("lookup", function(t)
  t:assert_eq(provium:vm("a"), a)
  t:assert_eq(provium.a, a)
  t:assert_eq(a:state(), "created")
  t:assert_eq(tostring(a), "vm(a state=created cid=- id=1 boot=0)")
  t:assert_eq(provium:name(), "provium")
  t:assert_eq(provium.pack("<i2", 1), string.pack("<i2", 1))
  t:assert_eq(provium:pack("<i2", 1), string.pack("<i2", 1))
  local e = t:assert_raises(function() provium:vm("nope", "missing") end)
  t:assert_contains(e, "missing")
  e = t:assert_raises(function() a:run("true") end)
  t:assert_contains(e, "vm:run: vm `+"`a`"+` is created")
  e = t:assert_raises(function() provium:vm("a", "linux") end)
  t:assert_contains(e, "name already declared at parent scope")
  e = t:assert_raises(function() provium.bogus = 1 end)
  t:assert_contains(e, "cannot set `+"`provium.bogus`"+`")
  local b = provium:vm("b", "linux")
  first_b = tostring(b)
  t:assert_eq(#provium:vm_names(), 1)
end)
test("scope closed", function(t)
  t:assert_eq(provium.b, nil)
  -- another VM of the same name and state prints differently (suites
  -- key per-guest caches by tostring(vm))
  local b = provium:vm("b", "linux")
  t:assert_neq(tostring(b), first_b)
  local sub = provium:lab("dc1")
  t:assert_eq(sub:name(), "dc1")
  local br = provium:bridge("lan")
  br:attach("a")
  t:assert_eq(br:members()[1], "a")
end)
`, nil)
	check(t, f, []want{{"lookup", "passed", ""}, {"scope closed", "passed", ""}})
}

func TestJSONGlobal(t *testing.T) {
	f := runSource(t, `
test("json", function(t)
  t:assert_eq(json.encode({b = 1, a = {1.0, "x"}}), '{"a":[1.0,"x"],"b":1}')
  t:assert_eq(json.decode("18446744073709551615"), -1)
  local e = t:assert_raises(function() json.decode("[1,") end)
  t:assert_contains(e, "json.decode: ")
end)`, nil)
	check(t, f, []want{{"json", "passed", ""}})
}

// Real suites build assertion messages eagerly with json.encode over
// decoded records (peios/integration-tests, eventd's stream-watch:
// `assert(f.status == "ok", "…" .. json.encode(f))` for every frame), so
// what json.encode accepts decides whether a passing run passes. It
// accepts what upstream's does (NaN and infinities as null, boolean keys);
// a string that is not UTF-8 raises there as here, naming the field.
func TestJSONEncodeInAssertionMessages(t *testing.T) {
	f := runSource(t, `
local function stream(t, frames)
  local got = {}
  for _, f in ipairs(frames) do
    t:assert(f.status == "ok", "stream frame not ok: " .. json.encode(f))
    got[#got + 1] = f
  end
  return got
end

test("frames with NaN, infinities and boolean keys", function(t)
  local got = stream(t, {
    {status = "ok", seq = 1, rate = 0/0, lag = math.huge, [true] = "flag"},
    {status = "ok", seq = 2, rate = 1.5e-7, lag = -math.huge},
  })
  t:assert_eq(#got, 2, "got " .. json.encode(got))
  t:assert_eq(json.encode(got[2]), '{"lag":null,"rate":1.5e-7,"seq":2,"status":"ok"}')
end)

test("a frame with a binary field", function(t)
  stream(t, {{status = "ok", seq = 1, boot_id = "\x8f\x00\xfe\x12"}})
end)`, nil)
	check(t, f, []want{
		{"frames with NaN, infinities and boolean keys", "passed", ""},
		{"a frame with a binary field", "failed", "json.encode: invalid UTF-8 in string at $.boot_id"},
	})
}

// _PROVIUM_SOURCE_PATH is the file's absolute path with symlinks resolved
// (upstream's runner sets it; suites locate their tools from it).
func TestSourcePathGlobal(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "suite", "tests")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "suite"), link); err != nil {
		t.Fatal(err)
	}
	resolved, err := filepath.EvalSymlinks(real)
	if err != nil {
		t.Fatal(err)
	}
	wantPath := filepath.Join(resolved, "a.test.lua")
	src := `test("source path", function(t)
  t:assert_eq(_PROVIUM_SOURCE_PATH, os.getenv("WANT_SOURCE_PATH"))
  t:assert(_PROVIUM_SOURCE_PATH:match("^(.*)/tests/"), "the suite root is found from it")
end)`
	if err := os.WriteFile(filepath.Join(real, "a.test.lua"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WANT_SOURCE_PATH", wantPath)
	through := filepath.Join(link, "tests", "a.test.lua")
	opts := &Options{Config: &config.Config{Profiles: map[string]*config.Profile{"linux": {Name: "linux"}}}}
	f := RunFile(context.Background(), File{Display: "tests/a.test.lua", RootRel: "tests/a.test.lua", Abs: through, Canonical: through}, opts)
	check(t, f, []want{{"source path", "passed", ""}})
}
