package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/provium/provium/internal/result"
)

// notRunAfterTimeout is the message the runner gives tests that never started
// because the file's budget ran out (30-runtime.md B7). They get no
// annotation of their own: the file's timeout annotation explains them, and
// GitHub shows only the first few errors of a step.
const notRunAfterTimeout = "not run: file timed out"

// Annotations writes GitHub Actions workflow commands (20-cli-config.md
// §4.3) so failures show up on the lines of the pull request. The caller
// enables it when GITHUB_ACTIONS=true.
type Annotations struct {
	mu sync.Mutex
	w  io.Writer
}

// NewAnnotations returns an annotation renderer writing to w.
func NewAnnotations(w io.Writer) *Annotations {
	return &Annotations{w: w}
}

// File writes one `::error` command per failed test, one for a chunk error
// and one for a timeout.
func (a *Annotations) File(f *result.File) error {
	var b bytes.Buffer
	file := escapeProperty(f.Path)
	if f.HasChunkError {
		b.WriteString("::error file=" + file)
		if f.ChunkErrorLine > 0 {
			fmt.Fprintf(&b, ",line=%d", f.ChunkErrorLine)
		}
		b.WriteString("::" + escapeData(f.ChunkError) + "\n")
	}
	for i := range f.Tests {
		t := &f.Tests[i]
		if t.Status != result.Failed || (f.TimedOut && t.Message == notRunAfterTimeout) {
			continue
		}
		b.WriteString("::error file=" + file)
		if line := annotationLine(t); line > 0 {
			fmt.Fprintf(&b, ",line=%d", line)
		}
		b.WriteString("::" + escapeData(t.Name+": "+t.Message) + "\n")
	}
	if f.TimedOut {
		b.WriteString("::error file=" + file + "::" + escapeData("timed out after "+FormatDuration(f.Timeout)) + "\n")
	}
	if b.Len() == 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("report: write annotations of %s: %w", f.Path, err)
	}
	return nil
}

// annotationLine prefers the innermost frame in the test file, then the line
// of the test( call.
func annotationLine(t *result.Test) int {
	if t.Line > 0 {
		return t.Line
	}
	return t.DeclLine
}

var (
	dataEscaper     = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A")
	propertyEscaper = strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C")
)

// escapeData escapes a command's message so a newline cannot end it early.
func escapeData(s string) string { return dataEscaper.Replace(s) }

// escapeProperty additionally escapes the separators of the property list.
func escapeProperty(s string) string { return propertyEscaper.Replace(s) }
