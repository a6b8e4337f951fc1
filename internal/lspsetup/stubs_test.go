package lspsetup

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// specPath is where every checkout finds the specification (../shared next
// to the repository).
const specPath = "../../../shared/spec/10-lua-api.md"

// The method names of 10-lua-api.md's tables, transcribed so the stub
// cannot drift even where the spec is not checked out.
var specMethods = map[string][]string{
	"Lab": {"vm", "bridge", "lab", "depends_on_file", "include", "remove", "members", "vm_names",
		"bridge_names", "sub_lab_names", "boot", "shutdown", "pause", "resume", "claim", "barrier",
		"snapshot", "restore", "vm_fixture", "lab_fixture", "pack", "unpack", "name"},
	"VM": {"boot", "pause", "resume", "shutdown", "reset", "power_button", "wakeup", "is_suspended",
		"snapshot", "restore", "close", "run", "run_async", "read_file", "write_file", "push_file",
		"stat", "listdir", "mkdir", "unlink", "rename", "open_file", "tail_file", "fd_stream",
		"syscall", "syscall_async", "ioctl", "read_mem", "nic", "disk", "attach_disk", "console",
		"clock", "console_socket_path", "spawn_worker", "batch", "name", "profile", "state", "cid",
		"is_quiescent", "open_file_count", "open_stream_count"},
	"File": {"read", "read_all", "write", "seek", "tell", "close", "fd", "tail_stream"},
	"Process": {"wait", "kill", "signal", "pid", "handle", "status", "stdin_write", "close_stdin",
		"stdout_stream", "stderr_stream", "close"},
}

// declaredMethods maps each class to the methods the stub defines with
// `function Class:method(`.
func declaredMethods(t *testing.T) map[string][]string {
	t.Helper()
	re := regexp.MustCompile(`^function (\w+):(\w+)\(`)
	out := map[string][]string{}
	for _, line := range strings.Split(string(typesLua), "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			out[m[1]] = append(out[m[1]], m[2])
		}
	}
	return out
}

func TestStubDeclaresEveryTabledMethod(t *testing.T) {
	declared := declaredMethods(t)
	for class, methods := range specMethods {
		for _, m := range methods {
			if !slices.Contains(declared[class], m) {
				t.Errorf("stub lacks %s:%s", class, m)
			}
		}
	}
}

// sectionMethods reads the method names from the first column of the tables
// (and `<prefix>:name(` mentions in the prose) of one `## ` section.
func sectionMethods(t *testing.T, heading, prefix string) []string {
	t.Helper()
	f, err := os.Open(specPath)
	if err != nil {
		t.Skipf("specification not available: %v", err)
	}
	defer f.Close()
	call := regexp.MustCompile("`(\\w+)\\(")
	prose := regexp.MustCompile("`" + prefix + ":(\\w+)\\(")
	var names []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			in = strings.HasPrefix(line, heading)
			continue
		}
		if !in {
			continue
		}
		if strings.HasPrefix(line, "| `") {
			first := strings.SplitN(line, "|", 3)[1]
			for _, m := range call.FindAllStringSubmatch(first, -1) {
				names = append(names, m[1])
			}
		}
		for _, m := range prose.FindAllStringSubmatch(line, -1) {
			names = append(names, m[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatalf("no methods found under %q in %s: has the layout changed?", heading, specPath)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func TestStubCoversSpecTables(t *testing.T) {
	declared := declaredMethods(t)
	for _, s := range []struct{ class, heading, prefix string }{
		{"Lab", "## 3. Lab", "lab"},
		{"VM", "## 5. VM", "vm"},
		{"Process", "## 7. Process", "proc"},
		{"File", "## 9. File", "file"},
	} {
		for _, m := range sectionMethods(t, s.heading, s.prefix) {
			if !slices.Contains(declared[s.class], m) {
				t.Errorf("spec %s lists %s:%s, the stub does not declare it", s.heading, s.class, m)
			}
			if !slices.Contains(specMethods[s.class], m) {
				t.Errorf("spec %s lists %s:%s, missing from specMethods", s.heading, s.class, m)
			}
		}
	}
}

func TestStubDeclaresEveryClassAndGlobal(t *testing.T) {
	src := string(typesLua)
	if !strings.HasPrefix(src, "---@meta") {
		t.Error("stub does not start with ---@meta")
	}
	for _, c := range []string{"Lab", "VM", "RunResult", "Process", "Worker", "Pending", "File", "Tail",
		"ConsoleStream", "Console", "Clock", "Bridge", "Nic", "Disk", "Snapshot", "LabSnapshot", "TestContext"} {
		re := regexp.MustCompile(`(?m)^---@class ` + c + `\b`)
		if !re.MatchString(src) {
			t.Errorf("stub lacks ---@class %s", c)
		}
	}
	for _, g := range []string{"function test(", "function todo(", "function wait_until(", "json = {}",
		"function json.encode(", "function json.decode(", "provium = {}"} {
		if !strings.Contains(src, "\n"+g) {
			t.Errorf("stub lacks global %q", g)
		}
	}
}

// The stub types values precisely; `any` is only right where the API takes
// or returns arbitrary Lua values.
func TestStubAvoidsAnyReturns(t *testing.T) {
	allowed := []string{"TestContext:assert_raises", "Lab:unpack"}
	lines := strings.Split(string(typesLua), "\n")
	fn := regexp.MustCompile(`^function (\w+[:.]\w+)\(`)
	var pendingAny bool
	for _, line := range lines {
		if strings.HasPrefix(line, "---@return any") {
			pendingAny = true
			continue
		}
		if m := fn.FindStringSubmatch(line); m != nil {
			if pendingAny && !slices.Contains(allowed, m[1]) {
				t.Errorf("%s returns any", m[1])
			}
			pendingAny = false
		}
	}
}
