package coverage

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provium/provium/internal/events"
)

func writeStream(t *testing.T, ps ...events.Payload) string {
	t.Helper()
	var b bytes.Buffer
	for i, p := range ps {
		f, err := events.Encode(int64(i+1), p)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(f)
	}
	path := filepath.Join(t.TempDir(), "ev.bin")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTextJSONAndHTML(t *testing.T) {
	path := writeStream(t,
		events.FileDiscovered{Path: "a.test.lua"},
		events.TestPassed{Path: "a.test.lua", Name: "one", Meta: events.Meta{"spec": "§2"}},
		events.TestFailed{Path: "a.test.lua", Name: "two", Reason: "<boom> & more", Meta: events.Meta{"spec": []any{"§1", "§2", int64(3)}}},
		events.TestSkipped{Path: "a.test.lua", Name: "three", Reason: "todo"},
		events.TestPassed{Path: "a.test.lua", Name: "four", Meta: events.Meta{"spec": true}},
		events.FileCompleted{Path: "a.test.lua", Status: "failed"},
	)
	html := filepath.Join(t.TempDir(), "r.html")
	var out, errb bytes.Buffer
	if code := Main([]string{"--from", path, "--html", html}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "coverage by `spec`\n" +
		"            passed  failed skipped   total\n" +
		"  §1             0       1       0       1\n" +
		"  §2             1       1       0       2\n" +
		"  <unset>        1       0       1       2\n" +
		"  total          2       1       1       4\n"
	if out.String() != want {
		t.Fatalf("text:\n%s\nwant:\n%s", out.String(), want)
	}
	h, err := os.ReadFile(html)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(h), "&lt;boom&gt; &amp; more") || strings.Contains(string(h), "<boom>") {
		t.Fatalf("html does not escape the reason:\n%s", h)
	}
	out.Reset()
	if code := Main([]string{"--from", path, "--json", "--by", "nothing"}, nil, &out, &errb); code != ExitOK {
		t.Fatal(code)
	}
	if !strings.Contains(out.String(), `"by":"nothing"`) || !strings.Contains(out.String(), `"totals":{"name":"total","passed":2,"failed":1,"skipped":1,"total":4}`) {
		t.Fatalf("json: %s", out.String())
	}
}

func TestTornFrameWarnsAndUsage(t *testing.T) {
	path := writeStream(t, events.TestPassed{Path: "a", Name: "x"}, events.TestPassed{Path: "a", Name: "y"})
	b, _ := os.ReadFile(path)
	os.WriteFile(path, b[:len(b)-3], 0o644)
	var out, errb bytes.Buffer
	if code := Main([]string{"--from", path}, nil, &out, &errb); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(errb.String(), "torn") || !strings.Contains(out.String(), "total          1") {
		t.Fatalf("out %q err %q", out.String(), errb.String())
	}
	if code := Main([]string{"--bogus"}, nil, &out, &errb); code != ExitUsage {
		t.Fatalf("usage exit %d", code)
	}
	if code := Main([]string{"--from", "/nonexistent/x"}, nil, &out, &errb); code != ExitError {
		t.Fatalf("missing file exit %d", code)
	}
	// stdin
	out.Reset()
	if code := Main([]string{"--from", "-"}, bytes.NewReader(b), &out, &errb); code != ExitOK || !strings.Contains(out.String(), "total          2") {
		t.Fatalf("stdin: %d %q", code, out.String())
	}
}
