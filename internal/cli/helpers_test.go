package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// suiteDir is the self-test suite, absolute.
func suiteDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("..", "..", "testdata", "selftest"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// syncBuffer is a bytes.Buffer safe for a writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// invocation is one in-process run of the CLI.
type invocation struct {
	t    *testing.T
	cwd  string
	vars map[string]string
	run  FileRunner
	host string // Env.HostRoot
	ksm  string // Env.KSMDir
}

// testHost makes a host tree for the pool: the real MemTotal, no cgroup
// limit and no /proc/pressure, so the machine's load (other test runs)
// cannot throttle dispatch in tests that need files to overlap.
func testHost(t *testing.T, tmp string) string {
	t.Helper()
	root := filepath.Join(tmp, "host")
	mi, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "proc", "meminfo"), mi, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// newInvocation runs in cwd with an isolated environment: cache, scratch,
// rerun state and HOME all under fresh temp dirs.
func newInvocation(t *testing.T, cwd string) *invocation {
	t.Helper()
	tmp := t.TempDir()
	// The scratch root must stay short (unix socket paths): not under
	// t.TempDir(), whose names grow with the test name.
	scratch, err := os.MkdirTemp("", "pvs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(scratch) })
	return &invocation{t: t, cwd: cwd, host: testHost(t, tmp), ksm: filepath.Join(tmp, "ksm"), vars: map[string]string{
		"HOME":                filepath.Join(tmp, "home"),
		"PROVIUM_CACHE_DIR":   filepath.Join(tmp, "cache"),
		"XDG_RUNTIME_DIR":     scratch,
		"PROVIUM_RERUN_STATE": filepath.Join(tmp, "rerun.json"),
		"TERM":                "dumb",
	}}
}

func (in *invocation) env(stdout, stderr *syncBuffer) Env {
	return Env{
		Stdin:  strings.NewReader(""),
		Stdout: stdout,
		Stderr: stderr,
		LookupEnv: func(k string) (string, bool) {
			v, ok := in.vars[k]
			return v, ok
		},
		Cwd:      in.cwd,
		RunFile:  in.run,
		HostRoot: in.host,
		KSMDir:   in.ksm,
	}
}

// exec runs args to completion.
func (in *invocation) exec(args ...string) (code int, stdout, stderr string) {
	in.t.Helper()
	return in.execCtx(context.Background(), args...)
}

func (in *invocation) execCtx(ctx context.Context, args ...string) (code int, stdout, stderr string) {
	var out, errb syncBuffer
	code = Execute(ctx, in.env(&out, &errb), args)
	return code, out.String(), errb.String()
}

// jsonFile is one line of --json output.
type jsonFile struct {
	Path       string     `json:"path"`
	Timeout    string     `json:"timeout"`
	Passed     bool       `json:"passed"`
	ChunkError *string    `json:"chunk_error"`
	Tests      []jsonTest `json:"tests"`
}

type jsonTest struct {
	Name    string   `json:"name"`
	Status  string   `json:"status"`
	Message *string  `json:"message"`
	Log     []string `json:"log"`
}

// parseJSONLines decodes --json output strictly (unknown keys fail).
func parseJSONLines(t *testing.T, out string) []jsonFile {
	t.Helper()
	var files []jsonFile
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		dec.DisallowUnknownFields()
		var f jsonFile
		if err := dec.Decode(&f); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		files = append(files, f)
	}
	return files
}

// markerLines maps `--@<id>` markers of a Lua file to their line numbers.
func markerLines(t *testing.T, path string) map[string]int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`--@(\w+)`)
	out := map[string]int{}
	for i, line := range strings.Split(string(data), "\n") {
		for _, m := range re.FindAllStringSubmatch(line, -1) {
			out[m[1]] = i + 1
		}
	}
	return out
}

// expandMarkers replaces `{id}` in msg by "<file>:<line>: ".
func expandMarkers(t *testing.T, dir, file, msg string) string {
	t.Helper()
	if !strings.Contains(msg, "{") {
		return msg
	}
	lines := markerLines(t, filepath.Join(dir, file))
	return regexp.MustCompile(`\{(\w+)\}`).ReplaceAllStringFunc(msg, func(m string) string {
		id := m[1 : len(m)-1]
		n, ok := lines[id]
		if !ok {
			t.Fatalf("%s: no marker --@%s", file, id)
		}
		return fmt.Sprintf("%s:%d: ", file, n)
	})
}

// writeTree creates files (relative path → content) under a new temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func lines(s string) []string {
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

func containsLine(out, line string) bool {
	for _, l := range lines(out) {
		if l == line {
			return true
		}
	}
	return false
}
