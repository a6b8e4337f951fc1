package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/provium/provium/internal/result"
)

func renderJSON(t *testing.T, files ...*result.File) []string {
	t.Helper()
	var b bytes.Buffer
	j := NewJSONLines(&b)
	for _, f := range files {
		if err := j.File(f); err != nil {
			t.Fatalf("File(%s): %v", f.Path, err)
		}
	}
	out := b.String()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("output %q does not end in a newline", out)
	}
	return strings.Split(strings.TrimSuffix(out, "\n"), "\n")
}

func TestJSONLinesExactShape(t *testing.T) {
	lines := renderJSON(t, passingFile(), failingFile(), chunkErrorFile(), timedOutFile())
	want := []string{
		`{"path":"tests/smoke.test.lua","timeout":"in_time","passed":true,"chunk_error":null,"tests":[` +
			`{"name":"boots","status":"passed","message":null,"log":["booted"]},` +
			`{"name":"slow one","status":"skipped","message":"filtered: slow tests skipped (pass --include-slow)","log":[]}]}`,
		`{"path":"tests/net/partition.test.lua","timeout":"in_time","passed":false,"chunk_error":null,"tests":[` +
			`{"name":"reach","status":"passed","message":null,"log":[]},` +
			`{"name":"split-brain","status":"failed","message":"partition.test.lua:12: client A could not reach B\nstack traceback:\n\tpartition.test.lua:12","log":["before partition","two\nlines"]},` +
			`{"name":"todo","status":"skipped","message":"todo","log":[]}]}`,
		`{"path":"tests/broken.test.lua","timeout":"in_time","passed":false,"chunk_error":"tests/broken.test.lua:3: attempt to call a nil value\nstack traceback:\n\t[C]: in ?","tests":[]}`,
		`{"path":"tests/long.test.lua","timeout":"timed_out","passed":false,"chunk_error":null,"tests":[` +
			`{"name":"first","status":"passed","message":null,"log":[]},` +
			`{"name":"hangs","status":"failed","message":"file timed out after 30s","log":[]},` +
			`{"name":"after","status":"failed","message":"not run: file timed out","log":[]}]}`,
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("line %d:\ngot  %s\nwant %s", i, lines[i], want[i])
		}
	}
}

func TestJSONLinesChunkErrorDropsTests(t *testing.T) {
	f := chunkErrorFile()
	f.Tests = []result.Test{{Name: "registered", Status: result.Failed, Message: "x"}}
	var obj struct {
		Tests []any `json:"tests"`
	}
	if err := json.Unmarshal([]byte(renderJSON(t, f)[0]), &obj); err != nil {
		t.Fatal(err)
	}
	if obj.Tests == nil || len(obj.Tests) != 0 {
		t.Errorf("tests = %v, want []", obj.Tests)
	}
}

func TestJSONLinesInvalidUTF8AndNoHTMLEscaping(t *testing.T) {
	f := &result.File{Path: "a\xffb.test.lua", Tests: []result.Test{
		{Name: "<n>", Status: result.Failed, Message: "bad \xc3\x28 & ok é", Log: []string{"\xfe"}},
	}}
	line := renderJSON(t, f)[0]
	want := `{"path":"a` + "\uFFFD" + `b.test.lua","timeout":"in_time","passed":false,"chunk_error":null,"tests":[` +
		`{"name":"<n>","status":"failed","message":"bad ` + "\uFFFD(" + ` & ok é","log":["` + "\uFFFD" + `"]}]}`
	if line != want {
		t.Errorf("got  %s\nwant %s", line, want)
	}
}

func TestJSONLinesFailedWithEmptyMessageIsString(t *testing.T) {
	f := &result.File{Path: "a.test.lua", Tests: []result.Test{{Name: "x", Status: result.Failed}}}
	if line := renderJSON(t, f)[0]; !strings.Contains(line, `"message":""`) {
		t.Errorf("got %s: a failed test's message is a string, never null", line)
	}
}

func TestWriteNoFiles(t *testing.T) {
	var b bytes.Buffer
	if err := WriteNoFiles(&b); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), `{"type":"no_files","message":"no *.test.lua files found"}`+"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if err := WriteNoFiles(failingWriter{}); err == nil {
		t.Error("want the writer's error")
	}
}
