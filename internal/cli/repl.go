package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/discover"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/runner"
	"github.com/provium/provium/internal/snapfile"
)

// REPL texts (20-cli-config.md §6 repl).
const (
	replPrompt       = "provium> "
	replContinue     = "...> "
	replNoProfile    = "provium repl: profile is required (or pass --fixture)"
	replBannerFmt    = "provium repl — booting VM `%s` (profile `%s`)"
	replHistoryFile  = ".provium_history"
	replHistoryLimit = 1000
	replChunk        = "repl"
)

// newReplCmd is `provium repl <profile> [--name N] [--fixture F]`.
func newReplCmd(env *Env, pf *persistentFlags) *cobra.Command {
	var name, fixtureName, attach string
	cmd := &cobra.Command{
		Use:   "repl [PROFILE] | repl --attach SOCK [--name VM]",
		Short: "Boot a VM (or restore a fixture, or attach to one kept by --keep-failed) and open an interactive Lua prompt",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			if attach != "" {
				if len(args) > 0 || fixtureName != "" {
					return usagef("repl --attach takes no PROFILE and no --fixture")
				}
				vmName := ""
				if cmd.Flags().Changed("name") {
					vmName = name
				}
				s := &session{env: env, pf: pf, rf: &runFlags{}}
				return s.replAttach(env.resolve(attach), vmName)
			}
			profile := ""
			if len(args) == 1 {
				profile = args[0]
			}
			if profile == "" && fixtureName == "" {
				fmt.Fprintln(env.Stderr, replNoProfile)
				return exitCode(ExitUsage)
			}
			s := &session{env: env, pf: pf, rf: &runFlags{}}
			return s.repl(cmd.Context(), profile, name, fixtureName)
		},
	}
	cmd.Flags().StringVar(&name, "name", "repl", "name of the VM")
	cmd.Flags().StringVar(&fixtureName, "fixture", "", "restore this vm fixture instead of booting")
	cmd.Flags().StringVar(&attach, "attach", "", "attach to a VM kept by a live `provium --keep-failed` run through its socket `SOCK` (--name picks the VM)")
	return cmd
}

// replBoot is the Lua that binds `vm`.
func (s *session) replBoot(cfg *config.Config, fx *runner.Fixtures, profile, name, fixtureName string) (code, bannerName, bannerProfile string, err error) {
	if fixtureName != "" {
		key, kerr := fx.Keyer.Key(fixtureName)
		if kerr != nil {
			return "", "", "", kerr
		}
		if kind, ok := fx.Cache.Lookup(key); ok {
			man, err := snapfile.ReadManifest(fx.Cache.EntryPath(kind, key))
			if err != nil {
				return "", "", "", fmt.Errorf("fixture `%s`: %w", fixtureName, err)
			}
			return fmt.Sprintf("vm = provium:vm_fixture(%q)", fixtureName), man.VMName, man.Profile, nil
		}
		if profile == "" {
			p, perr := cfg.DefaultProfile()
			if perr != nil {
				return "", "", "", perr
			}
			profile = p.Name
		}
		s.notice("fixture `%s` is not built; booting profile `%s` instead", fixtureName, profile)
	}
	return fmt.Sprintf("vm = provium:vm(%q, %q):boot()", name, profile), name, profile, nil
}

func (s *session) repl(ctx context.Context, profile, name, fixtureName string) error {
	if ctx == nil {
		ctx = context.Background()
	}
	cfg, err := s.loadConfig(true)
	if err != nil {
		return err
	}
	requested, err := s.checkEnvironment(ctx, cfg)
	if err != nil {
		return err
	}
	set, err := discover.Discover(discover.Options{Roots: cfg.Roots, Cwd: s.env.Cwd})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.CacheDir(), 0o755); err != nil {
		return fmt.Errorf("fixture cache: %w", err)
	}
	fx := s.openFixtures(ctx, cfg, set.Roots, requested, false)
	backend := s.guestBackend(cfg, requested, s.profileBuilds(cfg, nil), guest.Hooks{})
	defer backend.Close()

	boot, bannerName, bannerProfile, err := s.replBoot(cfg, fx, profile, name, fixtureName)
	if err != nil {
		return err
	}
	in, err := runner.NewInteractive(ctx, &runner.Options{
		Config: cfg, Roots: set.Roots, Backend: backend.ForFile, Fixtures: fx,
	}, replChunk)
	if err != nil {
		return err
	}
	defer in.Close()
	fmt.Fprintf(s.env.Stdout, replBannerFmt+"\n", bannerName, bannerProfile)

	var quit atomic.Bool
	exit := func(L *lua.Thread) (int, error) { quit.Store(true); return 0, nil }
	in.L().PushFunction(exit)
	in.L().SetGlobal("exit")
	in.L().PushFunction(exit)
	in.L().SetGlobal("quit")
	if _, err := in.Eval(boot, replChunk); err != nil {
		// codeOf adds the `provium: ` prefix.
		return fmt.Errorf("repl: %w", err)
	}

	lines, closeInput := s.replInput()
	defer closeInput()
	// Ctrl-C while a line runs interrupts it; at the prompt the terminal
	// (raw mode) or the reader handles it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	stopSigs := make(chan struct{})
	var sigWG sync.WaitGroup
	sigWG.Add(1)
	go func() {
		defer sigWG.Done()
		for {
			select {
			case <-sigs:
				in.Interrupt("interrupted")
			case <-stopSigs:
				return
			}
		}
	}()
	defer func() { close(stopSigs); sigWG.Wait() }()

	return s.promptLoop(lines, func(src string) ([]string, bool, error) {
		results, err := in.Eval(src, replChunk)
		in.ClearInterrupt()
		if err != nil && !errors.Is(err, runner.ErrIncomplete) {
			err = &evalError{err.Error()}
		}
		return results, quit.Load(), err
	})
}

// promptLoop reads chunks with the REPL prompts (`...> ` while a chunk is
// incomplete) and prints what eval returns, until EOF or eval says bye.
// eval returns runner.ErrIncomplete for a chunk that needs more lines.
func (s *session) promptLoop(lines readLineFunc, eval func(src string) (results []string, bye bool, err error)) error {
	var pending []string
	for {
		prompt := replPrompt
		if len(pending) > 0 {
			prompt = replContinue
		}
		line, cancelled, err := lines(prompt)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if cancelled {
			pending = nil
			continue
		}
		pending = append(pending, line)
		src := strings.Join(pending, "\n")
		if strings.TrimSpace(src) == "" {
			pending = nil
			continue
		}
		results, bye, err := eval(src)
		if errors.Is(err, runner.ErrIncomplete) {
			continue
		}
		pending = nil
		var ee *evalError
		switch {
		case errors.As(err, &ee):
			fmt.Fprintf(s.env.Stdout, "error: %s\n", ee.msg)
		case err != nil:
			return err
		}
		for _, r := range results {
			fmt.Fprintln(s.env.Stdout, r)
		}
		if bye {
			break
		}
	}
	fmt.Fprintln(s.env.Stdout, "bye")
	return nil
}

// evalError is a chunk's error, printed as `error: <msg>`; other errors
// end the prompt loop.
type evalError struct{ msg string }

func (e *evalError) Error() string { return e.msg }

// readLineFunc reads one line with a prompt; cancelled reports a Ctrl-C
// (the line and any pending chunk are dropped).
type readLineFunc func(prompt string) (line string, cancelled bool, err error)

// replInput returns the line source: a line-editing terminal with history
// (~/.provium_history) when stdin is a TTY, else plain lines.
func (s *session) replInput() (readLineFunc, func()) {
	f, ok := s.env.Stdin.(*os.File)
	if ok && term.IsTerminal(int(f.Fd())) {
		if r, done, err := s.ttyInput(f); err == nil {
			return r, done
		}
	}
	sc := bufio.NewScanner(s.env.Stdin)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	return func(prompt string) (string, bool, error) {
		fmt.Fprint(s.env.Stdout, prompt)
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return "", false, err
			}
			fmt.Fprintln(s.env.Stdout)
			return "", false, io.EOF
		}
		return sc.Text(), false, nil
	}, func() {}
}

// ctrlCReader turns Ctrl-C into "go to end, kill line, enter" so that the
// terminal returns an empty line instead of EOF, and flags it.
type ctrlCReader struct {
	r   io.Reader
	hit atomic.Bool
}

func (c *ctrlCReader) Read(p []byte) (int, error) {
	const repl = "\x1b[F\x15\r"
	buf := make([]byte, len(p)/len(repl))
	if len(buf) == 0 {
		buf = make([]byte, 1)
	}
	n, err := c.r.Read(buf)
	out := p[:0]
	for _, b := range buf[:n] {
		if b == 3 {
			c.hit.Store(true)
			out = append(out, repl...)
			continue
		}
		out = append(out, b)
	}
	return len(out), err
}

type stdio struct {
	io.Reader
	io.Writer
}

func (s *session) ttyInput(f *os.File) (readLineFunc, func(), error) {
	fd := int(f.Fd())
	if _, err := term.GetState(fd); err != nil {
		return nil, nil, err
	}
	cr := &ctrlCReader{r: f}
	t := term.NewTerminal(stdio{cr, s.env.Stdout}, replPrompt)
	hist := newFileHistory()
	t.History = hist
	// Raw mode only while reading: a running line keeps the terminal's
	// signals, so Ctrl-C interrupts it.
	return func(prompt string) (string, bool, error) {
		old, err := term.MakeRaw(fd)
		if err != nil {
			return "", false, err
		}
		t.SetPrompt(prompt)
		line, err := t.ReadLine()
		_ = term.Restore(fd, old)
		if cr.hit.Swap(false) {
			return "", true, nil
		}
		if err == nil {
			hist.save(line)
		}
		return line, false, err
	}, func() {}, nil
}

// fileHistory is the terminal's history, loaded from and appended to
// ~/.provium_history.
type fileHistory struct {
	path    string
	entries []string // oldest first
}

func newFileHistory() *fileHistory {
	h := &fileHistory{}
	home, err := os.UserHomeDir()
	if err != nil {
		return h
	}
	h.path = filepath.Join(home, replHistoryFile)
	if data, err := os.ReadFile(h.path); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if l != "" {
				h.entries = append(h.entries, l)
			}
		}
	}
	if len(h.entries) > replHistoryLimit {
		h.entries = h.entries[len(h.entries)-replHistoryLimit:]
	}
	return h
}

func (h *fileHistory) Add(entry string) {
	if entry == "" {
		return
	}
	h.entries = append(h.entries, entry)
	if len(h.entries) > replHistoryLimit {
		h.entries = h.entries[1:]
	}
}

func (h *fileHistory) Len() int { return len(h.entries) }

func (h *fileHistory) At(i int) string {
	if i < 0 || i >= len(h.entries) {
		panic("history index out of range: " + strconv.Itoa(i))
	}
	return h.entries[len(h.entries)-1-i]
}

// save appends a line to the history file; failures are ignored (history is
// a convenience).
func (h *fileHistory) save(line string) {
	if h.path == "" || strings.TrimSpace(line) == "" {
		return
	}
	f, err := os.OpenFile(h.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}
