package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/provium/provium/internal/report"
	"github.com/provium/provium/internal/result"
)

// statusInterval repaints the status line so its clock advances.
const statusInterval = 250 * time.Millisecond

// output is where one run's reports go.
type output struct {
	env      *Env
	json     bool
	plain    *report.Plain
	renderer report.FileRenderer

	status     *report.StatusLine
	stopStatus context.CancelFunc
	statusDone chan struct{}
	mu         sync.Mutex
	progress   report.Progress
}

func (s *session) newOutput(total int) *output {
	o := &output{env: s.env, json: s.rf.json}
	var renderers report.Multi
	if s.rf.json {
		renderers = append(renderers, report.NewJSONLines(s.env.Stdout))
	} else {
		o.plain = report.NewPlain(s.env.Stdout, report.PlainOptions{
			Verbose:  s.pf.verbose,
			Quiet:    s.pf.quiet,
			Numbered: isTerminal(s.env.Stdout),
			Total:    total,
		})
		renderers = append(renderers, o.plain)
	}
	if s.env.getenv("GITHUB_ACTIONS") == "true" {
		// Annotations go with the block; JSON keeps stdout parseable.
		w := s.env.Stdout
		if s.rf.json {
			w = s.env.Stderr
		}
		renderers = append(renderers, report.NewAnnotations(w))
	}
	o.renderer = renderers

	if isTerminal(s.env.Stderr) && s.env.getenv("TERM") != "dumb" &&
		!s.rf.json && !s.rf.noProgress && !s.pf.verbose {
		o.status = report.NewStatusLine(s.env.Stderr, nil)
		o.progress = report.Progress{Total: total}
		ctx, cancel := context.WithCancel(context.Background())
		o.stopStatus = cancel
		o.statusDone = make(chan struct{})
		go func() {
			defer close(o.statusDone)
			_ = o.status.Run(ctx, statusInterval)
		}()
	}
	return o
}

// started counts a dispatched file on the status line.
func (o *output) started() {
	if o.status == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.progress.Running++
	_ = o.status.Update(o.progress)
}

// file renders one file's block; it is called in discovery order.
func (o *output) file(f *result.File, dispatched bool) error {
	if o.status != nil {
		o.mu.Lock()
		defer o.mu.Unlock()
		_ = o.status.Clear()
	}
	err := o.renderer.File(f)
	if o.status != nil {
		o.progress.Done++
		if dispatched {
			o.progress.Running--
		}
		o.progress.Tests += len(f.Tests)
		_ = o.status.Update(o.progress)
	}
	return err
}

// stop removes the status line before the summary.
func (o *output) stop() {
	if o.status == nil {
		return
	}
	o.stopStatus()
	<-o.statusDone
	_ = o.status.Clear()
}

// summary prints the summary and seed line (plain) or the seed line on
// stderr (JSON).
func (o *output) summary(run *result.Run) error {
	if o.json {
		_, err := fmt.Fprintln(o.env.Stderr, report.SeedLine(run.Seed))
		return err
	}
	return o.plain.Summary(run)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
