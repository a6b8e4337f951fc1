package coverage

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/provium/provium/internal/events"
)

// Exit codes of provium-coverage (C7).
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// socketQuiet is how long a socket reader waits, with no file in flight,
// before it reports a run that did not complete every discovered file.
const socketQuiet = 2 * time.Second

type options struct {
	from, fromSocket, by, html string
	json                       bool
}

// Main runs provium-coverage with args (without the program name).
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o := &options{}
	code := ExitOK
	cmd := &cobra.Command{
		Use:   "provium-coverage [--from PATH|-] [--from-socket PATH] [--by KEY] [--json] [--html OUT]",
		Short: "Report test outcomes of a provium event stream grouped by a meta key",
		Long: "provium-coverage reads the event stream of a provium run (--save-events, --events-stdout or\n" +
			"--events-socket) and counts passed, failed and skipped tests by meta[KEY] (default `spec`):\n" +
			"a string is one bucket, an array one bucket per string element, anything else <unset>.",
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.from != "" && o.fromSocket != "" {
				return usage{errors.New("--from and --from-socket cannot be used together")}
			}
			if o.by == "" {
				return usage{errors.New("--by: expected a meta key, got an empty string")}
			}
			code = run(o, stdin, stdout, stderr)
			return nil
		},
	}
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage{err} })
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "read frames from `PATH` (- or none: stdin)")
	f.StringVar(&o.fromSocket, "from-socket", "", "read frames from a provium --events-socket at `PATH`; report at each run end")
	f.StringVar(&o.by, "by", "spec", "group by meta `KEY`")
	f.BoolVar(&o.json, "json", false, "print the counts as JSON")
	f.StringVar(&o.html, "html", "", "also write a self-contained HTML report to `OUT`")
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(stderr, "provium-coverage: %v\n", err)
		var u usage
		if errors.As(err, &u) {
			fmt.Fprintln(stderr, "Run 'provium-coverage --help' for usage.")
			return ExitUsage
		}
		return ExitError
	}
	return code
}

type usage struct{ err error }

func (u usage) Error() string { return u.err.Error() }

func run(o *options, stdin io.Reader, stdout, stderr io.Writer) int {
	if o.fromSocket != "" {
		conn, err := net.Dial("unix", o.fromSocket)
		if err != nil {
			fmt.Fprintf(stderr, "provium-coverage: --from-socket: %v\n", err)
			return ExitError
		}
		defer conn.Close()
		return readSocket(o, conn, stdout, stderr)
	}
	var in io.Reader = stdin
	if o.from != "" && o.from != "-" {
		f, err := os.Open(o.from)
		if err != nil {
			fmt.Fprintf(stderr, "provium-coverage: --from: %v\n", err)
			return ExitError
		}
		defer f.Close()
		in = f
	}
	t := New(o.by)
	r := events.NewReader(in)
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, events.ErrTornFrame) {
			fmt.Fprintf(stderr, "provium-coverage: warning: %v; ignoring it\n", err)
			break
		}
		if err != nil {
			fmt.Fprintf(stderr, "provium-coverage: %v\n", err)
			return ExitError
		}
		t.Add(ev)
	}
	return report(o, t, stdout, stderr)
}

// readSocket reports at each run end and at EOF; a file_discovered after
// a reported run starts a new tally.
func readSocket(o *options, conn net.Conn, stdout, stderr io.Writer) int {
	type item struct {
		ev  events.Event
		err error
	}
	ch := make(chan item)
	go func() {
		r := events.NewReader(conn)
		for {
			ev, err := r.Next()
			ch <- item{ev, err}
			if err != nil {
				return
			}
		}
	}()
	t := New(o.by)
	reported := false
	quiet := time.NewTimer(socketQuiet)
	defer quiet.Stop()
	for {
		select {
		case it := <-ch:
			if it.err != nil {
				if errors.Is(it.err, events.ErrTornFrame) {
					fmt.Fprintf(stderr, "provium-coverage: warning: %v; ignoring it\n", it.err)
				} else if it.err != io.EOF {
					fmt.Fprintf(stderr, "provium-coverage: %v\n", it.err)
					return ExitError
				}
				if !reported && !t.Empty() {
					return report(o, t, stdout, stderr)
				}
				return ExitOK
			}
			if _, ok := it.ev.Payload.(events.FileDiscovered); ok && reported {
				t, reported = New(o.by), false
			}
			t.Add(it.ev)
			if !reported && t.RunEnded() {
				if c := report(o, t, stdout, stderr); c != ExitOK {
					return c
				}
				reported = true
			}
			quiet.Reset(socketQuiet)
		case <-quiet.C:
			if !reported && !t.Empty() && !t.InFlight() {
				if c := report(o, t, stdout, stderr); c != ExitOK {
					return c
				}
				reported = true
			}
		}
	}
}

func report(o *options, t *Tally, stdout, stderr io.Writer) int {
	var err error
	if o.json {
		err = t.WriteJSON(stdout)
	} else {
		err = t.WriteText(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "provium-coverage: %v\n", err)
		return ExitError
	}
	if o.html != "" {
		f, err := os.Create(o.html)
		if err == nil {
			err = t.WriteHTML(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "provium-coverage: --html: %v\n", err)
			return ExitError
		}
	}
	return ExitOK
}
