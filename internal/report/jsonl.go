package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/provium/provium/internal/result"
)

// jsonFile is one line of --json output. Field order is the contract
// (20-cli-config.md §4.4): encoding/json keeps declaration order.
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

// JSONLines writes one compact JSON object per file. It writes no summary:
// the seed and notices belong on stderr in this mode.
type JSONLines struct {
	mu sync.Mutex
	w  io.Writer
}

// NewJSONLines returns a JSON-lines renderer writing to w.
func NewJSONLines(w io.Writer) *JSONLines {
	return &JSONLines{w: w}
}

// File writes f as one line.
func (j *JSONLines) File(f *result.File) error {
	line, err := marshalLine(fileObject(f))
	if err != nil {
		return fmt.Errorf("report: encode %s as JSON: %w", f.Path, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, err := j.w.Write(line); err != nil {
		return fmt.Errorf("report: write JSON result of %s: %w", f.Path, err)
	}
	return nil
}

func fileObject(f *result.File) jsonFile {
	obj := jsonFile{
		Path:    validUTF8(f.Path),
		Timeout: "in_time",
		Passed:  f.Passed(),
		Tests:   []jsonTest{},
	}
	if f.TimedOut {
		obj.Timeout = "timed_out"
	}
	if f.HasChunkError {
		msg := validUTF8(f.ChunkError)
		obj.ChunkError = &msg
		// A file whose top level failed reports no tests (§4.4).
		return obj
	}
	for _, t := range f.Tests {
		jt := jsonTest{Name: validUTF8(t.Name), Status: string(t.Status), Log: make([]string, 0, len(t.Log))}
		if t.Status != result.Passed {
			msg := validUTF8(t.Message)
			jt.Message = &msg
		}
		for _, entry := range t.Log {
			jt.Log = append(jt.Log, validUTF8(entry))
		}
		obj.Tests = append(obj.Tests, jt)
	}
	return obj
}

// noFiles is the line --json prints when discovery found nothing.
type noFiles struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// WriteNoFiles writes `{"type":"no_files","message":"no *.test.lua files found"}`.
func WriteNoFiles(w io.Writer) error {
	line, err := marshalLine(noFiles{Type: "no_files", Message: "no *.test.lua files found"})
	if err != nil {
		return fmt.Errorf("report: encode no_files line: %w", err)
	}
	if _, err := w.Write(line); err != nil {
		return fmt.Errorf("report: write no_files line: %w", err)
	}
	return nil
}

// marshalLine encodes v compactly with a trailing newline. HTML escaping is
// off: consumers are programs, and `<` in a message should stay readable.
func marshalLine(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
