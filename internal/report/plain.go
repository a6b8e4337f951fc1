package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/provium/provium/internal/result"
)

// PlainOptions selects the plain-text variant (20-cli-config.md §4.2, §4.3).
type PlainOptions struct {
	Verbose bool // also PASS/SKIP lines and the log of failed tests
	Quiet   bool // only blocks of files that did not pass
	// Numbered prefixes each block with "[<i>/<Total>] ". The caller sets it
	// only when stdout is a terminal; the renderer never probes.
	Numbered bool
	Total    int
}

// Plain writes the human-readable report. It is safe for use by several
// goroutines, but blocks appear in call order, so the runner must call File
// in discovery order.
type Plain struct {
	mu    sync.Mutex
	w     io.Writer
	opts  PlainOptions
	index int // files seen so far, including ones -q hides
}

// NewPlain returns a plain renderer writing to w.
func NewPlain(w io.Writer, opts PlainOptions) *Plain {
	return &Plain{w: w, opts: opts}
}

// File writes f's block: the file line, then the details of its tests.
func (p *Plain) File(f *result.File) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.index++
	if p.opts.Quiet && f.Passed() {
		return nil
	}
	var b bytes.Buffer
	if p.opts.Numbered {
		fmt.Fprintf(&b, "[%d/%d] ", p.index, p.opts.Total)
	}
	passed, failed, skipped := f.Counts()
	if f.HasChunkError {
		// The chunk error form has no counts: the tests never ran (or the
		// runner gave up on them), so numbers would mislead.
		fmt.Fprintf(&b, "%s %s\n", fileLabel(f, failed), f.Path)
		writeChunkError(&b, f.ChunkError)
		return p.flush(&b, f.Path)
	}
	fmt.Fprintf(&b, "%s %s (%d passed, %d failed, %d skipped)\n", fileLabel(f, failed), f.Path, passed, failed, skipped)
	for i := range f.Tests {
		p.writeTest(&b, &f.Tests[i])
	}
	return p.flush(&b, f.Path)
}

func (p *Plain) flush(b *bytes.Buffer, path string) error {
	if _, err := p.w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("report: write result of %s: %w", path, err)
	}
	return nil
}

// fileLabel is TIME for a timed-out file, FAIL for any other file that is not
// clean (a crashed file may have no failed test yet), else PASS.
func fileLabel(f *result.File, failed int) string {
	switch {
	case f.TimedOut:
		return "TIME"
	case failed > 0 || !f.Passed():
		return "FAIL"
	default:
		return "PASS"
	}
}

func writeChunkError(b *bytes.Buffer, msg string) {
	lines := splitLines(msg)
	fmt.Fprintf(b, "  chunk_error: %s\n", lines[0])
	for _, l := range lines[1:] {
		fmt.Fprintf(b, "    %s\n", l)
	}
}

func (p *Plain) writeTest(b *bytes.Buffer, t *result.Test) {
	switch t.Status {
	case result.Failed:
		fmt.Fprintf(b, "    FAIL %s\n", t.Name)
		if t.Message != "" {
			for _, l := range splitLines(t.Message) {
				fmt.Fprintf(b, "        %s\n", l)
			}
		}
		if p.opts.Verbose {
			for _, entry := range t.Log {
				lines := splitLines(entry)
				fmt.Fprintf(b, "        log: %s\n", lines[0])
				for _, l := range lines[1:] {
					// Align continuations under the entry's first character.
					fmt.Fprintf(b, "             %s\n", l)
				}
			}
		}
	case result.Passed:
		if p.opts.Verbose {
			fmt.Fprintf(b, "    PASS %s\n", t.Name)
		}
	case result.Skipped:
		if p.opts.Verbose {
			if t.Message == "" {
				fmt.Fprintf(b, "    SKIP %s\n", t.Name)
			} else {
				// A multi-line reason would break the one-line form.
				fmt.Fprintf(b, "    SKIP %s (%s)\n", t.Name, strings.Join(splitLines(t.Message), " "))
			}
		}
	}
}

// splitLines splits on LF, dropping one trailing newline and any CR before a
// LF, so a message ending in "\n" does not print an empty indented line. It
// always returns at least one element.
func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

// Summary writes the run summary (after an empty line) and the seed line.
// The caller clears any status line first.
func (p *Plain) Summary(run *result.Run) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b bytes.Buffer
	b.WriteString("\n")
	b.WriteString(SummaryLine(run))
	b.WriteString("\n")
	b.WriteString(SeedLine(run.Seed))
	b.WriteString("\n")
	if _, err := p.w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("report: write summary: %w", err)
	}
	return nil
}

// SummaryLine is `<n> file(s); <p> passed, <f> failed, <s> skipped[, <e>
// file(s) errored]; <secs>s`, without a newline.
func SummaryLine(run *result.Run) string {
	var passed, failed, skipped, errored int
	for _, f := range run.Files {
		p, fl, s := f.Counts()
		passed += p
		failed += fl
		skipped += s
		if f.Errored() {
			errored++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d file(s); %d passed, %d failed, %d skipped", len(run.Files), passed, failed, skipped)
	if errored > 0 {
		fmt.Fprintf(&b, ", %d file(s) errored", errored)
	}
	fmt.Fprintf(&b, "; %.2fs", run.Duration.Seconds())
	return b.String()
}

// SeedLine is `seed <N> (reproduce with --seed <N>)`, without a newline. With
// --json the caller writes it to stderr itself.
func SeedLine(seed uint64) string {
	return fmt.Sprintf("seed %d (reproduce with --seed %d)", seed, seed)
}
