package cli

// The expected outcome of every file of testdata/selftest under default
// flags. `{id}` in a message stands for "<file>:<line>: " of the line marked
// `--@id` (Lua adds the position to errors raised with a level).

const (
	stPassed  = "passed"
	stFailed  = "failed"
	stSkipped = "skipped"
)

type testWant struct {
	name, status, message string
	prefix                bool // message is a prefix (the text will change)
	log                   []string
}

type fileWant struct {
	path       string
	chunkError string // "" = none
	timedOut   bool
	tests      []testWant
}

func pass(name string) testWant         { return testWant{name: name, status: stPassed} }
func fail(name, msg string) testWant    { return testWant{name: name, status: stFailed, message: msg} }
func skipped(name, msg string) testWant { return testWant{name: name, status: stSkipped, message: msg} }

const (
	reasonMetaSkip = "skipped (meta.skip)"
	reasonSlow     = "filtered: slow tests skipped (pass --include-slow)"
)

// suiteWant lists the files in discovery order (bytewise under the root).
func suiteWant() []fileWant {
	return []fileWant{
		{path: "assertions.test.lua", tests: []testWant{
			pass("assert passes"),
			fail("assert fails by default message", "{assert_default}assertion failed"),
			fail("assert fails with a message", "{assert_msg}custom message"),
			pass("assert_eq passes"),
			fail("assert_eq fails by default message", "{eq_default}assert_eq failed: 1 ~= 2"),
			fail("assert_eq fails with a message", "{eq_msg}names differ: x ~= y"),
			pass("assert_neq passes"),
			fail("assert_neq fails by default message", "{neq_default}assert_neq failed: 3 == 3"),
			fail("assert_neq fails with a message", "{neq_msg}same: a == a"),
			pass("assert_contains passes"),
			fail("assert_contains fails by default message", "{contains_default}assert_contains failed: xyz not found in: hello"),
			fail("assert_contains fails with a message", "{contains_msg}missing: d not found in: abc"),
			fail("assert_contains cuts the haystack to 4 KiB", "{contains_cut}assert_contains failed: b not found in: "+repeatA(4096)),
			fail("assert_contains rejects non-strings", "{contains_type}assert_contains: both arguments must be strings (slice 2 limit)"),
			pass("assert_raises passes and returns the error"),
			fail("assert_raises fails by default message", "{raises_default}assert_raises: expected to raise"),
			fail("assert_raises fails with a message", "{raises_msg}should raise: expected to raise"),
			fail("fail by default message", "{fail_default}explicit failure (t:fail)"),
			fail("fail with a message", "{fail_msg}went wrong"),
			fail("error raised by the body", "{plain_error}plain error"),
			fail("error without position", "bare message"),
			pass("context fields"),
			pass("context meta"),
		}},
		{path: "bad_args.test.lua", chunkError: "test(name, [meta,] fn): bad arguments"},
		{path: "chunk_error.test.lua", chunkError: "{chunk}top level broke"},
		{path: "duplicate.test.lua", chunkError: "test: duplicate name `same` in this file"},
		{path: "json.test.lua", tests: []testWant{
			pass("encode scalars"),
			pass("encode tables"),
			pass("encode what upstream's encoder accepts"),
			pass("encode errors"),
			pass("decode values"),
			pass("decode numbers"),
			pass("decode errors"),
			pass("round trip"),
		}},
		{path: "lab.test.lua", tests: []testWant{
			pass("unknown profile"),
			fail("unknown profile raised", "lab:vm: unknown profile `nope` (known: big, small); declare [profiles.nope] in provium.toml, or use profile `linux`, the default image (`provium image build >> provium.toml` pins it)"),
			fail("vm lookup miss", "lab:vm: no vm named `ghost` in lab `provium` or its parent scopes"),
			pass("dot sugar"),
			pass("shadowing a file-scope vm"),
			pass("sub-lab"),
			pass("bridge"),
			pass("test scope ends with the test"),
			pass("boot is not available yet"),
			// Today: "vm:boot: no VM backend yet (…)"; with the VM core it
			// becomes a boot failure (the kernel does not exist). Both are
			// vm:boot errors.
			{name: "boot raised", status: stFailed, message: "vm:boot: ", prefix: true},
			pass("file-scope keys are set at the top level only"),
			pass("a negative integer duration is shown as Lua shows it"),
			pass("unknown provium key"),
		}},
		{path: "log.test.lua", tests: []testWant{
			{name: "log on a passing test", status: stPassed, log: []string{"hello", "42", "true"}},
			{name: "log on a failing test", status: stFailed, message: "{log_fail}after logging", log: []string{"step 1", "two\nlines"}},
		}},
		{path: "pack.test.lua", tests: []testWant{pass("pack both forms"), pass("unpack both forms")}},
		{path: "require.test.lua", tests: []testWant{pass("helper module"), pass("init module"), pass("missing module")}},
		{path: "skips.test.lua", tests: []testWant{
			skipped("skip = true", reasonMetaSkip),
			skipped("skip = 1", reasonMetaSkip),
			pass("skip = 0 runs"),
			pass("skip = false runs"),
			skipped("skip = reason", "skipped: flaky on CI"),
			skipped("slow = true", reasonSlow),
			skipped("slow = 1", reasonSlow),
			skipped("skip beats slow", reasonMetaSkip),
			skipped("t:skip with a reason", "not today"),
			skipped("t:skip without a reason", "skipped"),
		}},
		{path: "sticky.test.lua", tests: []testWant{
			fail("failure inside pcall still fails", "first: 1 ~= 2"),
			pass("assert_raises restores a clean flag"),
			fail("assert_raises keeps an earlier failure", "earlier"),
			fail("skip after a failure stays failed", "before skip"),
			pass("pcall of a plain error does not fail"),
		}},
		{path: "sub/nested.test.lua", tests: []testWant{pass("nested passes")}},
		{path: "syntax.test.lua", chunkError: "syntax.test.lua:5: ')' expected (to close '(' at line 2) near <eof>"},
		{path: "tags.test.lua", tests: []testWant{
			pass("net test"), pass("dns test"), pass("untagged"),
			pass("meta subsystems"), pass("meta flaky bool"), pass("meta flaky string"),
		}},
		{path: "timeout.test.lua", tests: []testWant{
			pass("before the loop"),
			fail("spins forever", "test timed out after 200ms"),
			fail("after the loop", "lab torn down by timeout of test `spins forever`"),
		}},
		{path: "timeout_pcall.test.lua", tests: []testWant{
			fail("pcall cannot catch the watchdog", "test timed out after 150ms"),
		}},
		{path: "todo.test.lua", tests: []testWant{skipped("first", "todo"), skipped("second", "todo")}},
		{path: "todo_reason.test.lua", tests: []testWant{
			skipped("declared before todo", "waiting on the spec"),
			skipped("declared after todo", "waiting on the spec"),
		}},
		{path: "wait.test.lua", tests: []testWant{
			pass("wait_until returns the first truthy result"),
			pass("wait_until calls the predicate at least once"),
			fail("wait_until timeout with desc", "wait_until: the flag not met within 0.05s"),
			fail("wait_until timeout default desc", "wait_until: condition not met within 0.05s"),
			fail("wait_until predicate error propagates", "{pred_error}predicate broke"),
			fail("wait_until bad timeout string", "wait_until: bad timeout string `soon` (expected number with ms/s/m/h suffix)"),
		}},
	}
}

func repeatA(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}

// counts totals a want list the way the summary line does.
func counts(files []fileWant) (passed, failed, skippedN, errored int) {
	for _, f := range files {
		if f.chunkError != "" || f.timedOut {
			errored++
		}
		if f.chunkError != "" {
			continue
		}
		for _, tw := range f.tests {
			switch tw.status {
			case stPassed:
				passed++
			case stFailed:
				failed++
			case stSkipped:
				skippedN++
			}
		}
	}
	return
}

// filePasses says whether a want is a clean file.
func (f fileWant) passes() bool {
	if f.chunkError != "" || f.timedOut {
		return false
	}
	for _, tw := range f.tests {
		if tw.status == stFailed {
			return false
		}
	}
	return true
}
