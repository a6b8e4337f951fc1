package report

import (
	"bytes"
	"testing"

	"github.com/provium/provium/internal/result"
)

func renderAnnotations(t *testing.T, files ...*result.File) string {
	t.Helper()
	var b bytes.Buffer
	a := NewAnnotations(&b)
	for _, f := range files {
		if err := a.File(f); err != nil {
			t.Fatalf("File(%s): %v", f.Path, err)
		}
	}
	return b.String()
}

func TestAnnotationsFailedTestUsesInnermostLine(t *testing.T) {
	got := renderAnnotations(t, passingFile(), failingFile())
	want := "::error file=tests/net/partition.test.lua,line=12::split-brain: partition.test.lua:12: client A could not reach B%0Astack traceback:%0A\tpartition.test.lua:12\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestAnnotationsFallBackToDeclLineAndOmitUnknownLine(t *testing.T) {
	f := &result.File{Path: "a.test.lua", Tests: []result.Test{
		{Name: "decl", Status: result.Failed, Message: "m", DeclLine: 4},
		{Name: "none", Status: result.Failed, Message: "m"},
	}}
	got := renderAnnotations(t, f)
	want := "::error file=a.test.lua,line=4::decl: m\n::error file=a.test.lua::none: m\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestAnnotationsChunkErrorLineOnlyWhenInFile(t *testing.T) {
	in := chunkErrorFile()
	out := chunkErrorFile()
	out.ChunkErrorLine = 0
	out.ChunkError = "helpers/x.lua:1: boom"
	got := renderAnnotations(t, in, out)
	want := "::error file=tests/broken.test.lua,line=3::tests/broken.test.lua:3: attempt to call a nil value%0Astack traceback:%0A\t[C]: in ?\n" +
		"::error file=tests/broken.test.lua::helpers/x.lua:1: boom\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestAnnotationsTimeout(t *testing.T) {
	got := renderAnnotations(t, timedOutFile())
	// The running test keeps its annotation; tests that never ran are covered
	// by the file's timeout line.
	want := "::error file=tests/long.test.lua,line=7::hangs: file timed out after 30s\n" +
		"::error file=tests/long.test.lua::timed out after 30s\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestAnnotationsEscaping(t *testing.T) {
	f := &result.File{Path: "dir:a,b%/x.test.lua", Tests: []result.Test{
		{Name: "100% a:b, c", Status: result.Failed, Message: "x\r\ny%", Line: 1},
	}}
	got := renderAnnotations(t, f)
	want := "::error file=dir%3Aa%2Cb%25/x.test.lua,line=1::100%25 a:b, c: x%0D%0Ay%25\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestMultiRunsEveryRenderer(t *testing.T) {
	var plain, notes bytes.Buffer
	m := Multi{NewPlain(&plain, PlainOptions{}), NewAnnotations(&notes)}
	if err := m.File(failingFile()); err != nil {
		t.Fatal(err)
	}
	if plain.Len() == 0 || notes.Len() == 0 {
		t.Errorf("plain %q, annotations %q: want both written", plain.String(), notes.String())
	}
	if err := (Multi{NewPlain(failingWriter{}, PlainOptions{}), NewAnnotations(&notes)}).File(failingFile()); err == nil {
		t.Error("want the failing renderer's error")
	}
}
