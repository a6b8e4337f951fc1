package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/runner"
)

// --keep-failed texts (20-cli-config.md §3.8).
const (
	msgKeeping        = "keeping %d VM(s) of failed tests; press Ctrl-C to tear down"
	msgKeptTornDown   = "tore down %d kept VM(s)"
	errFmtAttachName  = "several VMs are kept; pass --name with one of: %s"
	errFmtAttachNoVM  = "no kept VM named `%s`; kept: %s"
	attachBannerFmt   = "provium repl — attached to VM `%s` (%s, test `%s`), kept by process %d"
	keepTeardownLimit = 30 * time.Second
)

// keptVM is one VM --keep-failed keeps.
type keptVM struct {
	file, test string
	vm         *lab.VM
}

func (k keptVM) testName() string {
	if k.test == "" {
		return "(file scope)"
	}
	return k.test
}

// keeper holds the VMs of failed tests after the run and serves
// `provium repl --attach` sessions on them.
type keeper struct {
	opts *runner.Options // Lua states of attach sessions are set up like the run's

	mu      sync.Mutex
	vms     []keptVM
	bridges []lab.Closer // of the kept VMs' scopes, closed after them
}

// keep is runner.Options.Keep.
func (k *keeper) keep(f runner.File, test string, vms []*lab.VM, bridges []lab.Closer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.bridges = append(k.bridges, bridges...)
	for _, v := range vms {
		k.vms = append(k.vms, keptVM{file: f.Display, test: test, vm: v})
	}
}

func (k *keeper) list() []keptVM {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]keptVM(nil), k.vms...)
}

// hold prints what is kept, serves attach sessions and waits for ctx (the
// run's: Ctrl-C cancels it), then tears everything down. It reports
// whether it held anything.
func (k *keeper) hold(ctx context.Context, s *session, scratch string) bool {
	stop := k.start(s, scratch)
	if stop == nil {
		return false
	}
	if s.env.keepWaited != nil {
		s.env.keepWaited.Store(true) // a signal now only ends this wait
	}
	<-ctx.Done()
	stop()
	return true
}

// start prints what is kept and serves attach sessions until the returned
// stop, which also tears the kept VMs and bridges down; nil when nothing
// is kept. Under --watch the next iteration calls stop.
func (k *keeper) start(s *session, scratch string) (stop func()) {
	vms := k.list()
	if len(vms) == 0 {
		return nil
	}
	sock := filepath.Join(scratch, fmt.Sprintf("keep-%d.sock", os.Getpid()))
	_ = os.MkdirAll(scratch, 0o700)
	_ = os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		s.notice("warning: --keep-failed: cannot serve repl --attach on `%s`: %v", sock, err)
		ln = nil
	} else {
		_ = os.Chmod(sock, 0o600)
	}
	out := s.env.Stdout
	fmt.Fprintln(out)
	for _, v := range vms {
		fmt.Fprintf(out, "kept vm `%s` of %s, test `%s`\n", v.vm.Path(), v.file, v.testName())
		if m, ok := v.vm.Machine().(*guest.Machine); ok && m != nil {
			if p, err := m.ConsoleSocket(); err == nil {
				fmt.Fprintf(out, "  console: %s (serial, read/write: socat -,raw,echo=0 UNIX-CONNECT:%s)\n", p, p)
			}
		}
		if ln != nil {
			fmt.Fprintf(out, "  repl:    provium repl --attach %s --name %s\n", sock, v.vm.Path())
		}
	}
	s.notice(msgKeeping, len(vms))

	var wg sync.WaitGroup
	sessCtx, stopSessions := context.WithCancel(context.Background())
	if ln != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					k.serve(sessCtx, c)
				}()
			}
		}()
	}
	return func() {
		if ln != nil {
			ln.Close()
		}
		stopSessions()
		wg.Wait()
		k.teardown(s, vms)
	}
}

// teardown stops the kept VMs (in parallel), then their bridges.
func (k *keeper) teardown(s *session, vms []keptVM) {
	tctx, cancel := context.WithTimeout(context.Background(), keepTeardownLimit)
	defer cancel()
	var twg sync.WaitGroup
	for _, v := range vms {
		twg.Add(1)
		go func() {
			defer twg.Done()
			_ = v.vm.Close(tctx)
		}()
	}
	twg.Wait()
	k.mu.Lock()
	bridges := k.bridges
	k.mu.Unlock()
	for _, b := range bridges {
		_ = b.Close(tctx)
	}
	s.notice(msgKeptTornDown, len(vms))
}

// attachMsg is one line of the attach protocol, each way: the client
// sends {name} once, then {src} per chunk; the server answers {banner}
// or {error}, then per chunk {results} | {error} | {incomplete}, and
// {bye} after exit().
type attachMsg struct {
	Name       string   `json:"name,omitempty"`
	Src        *string  `json:"src,omitempty"`
	Banner     string   `json:"banner,omitempty"`
	Results    []string `json:"results,omitempty"`
	Error      string   `json:"error,omitempty"`
	Incomplete bool     `json:"incomplete,omitempty"`
	Bye        bool     `json:"bye,omitempty"`
}

// pick finds the kept VM an attach session asks for.
func (k *keeper) pick(name string) (keptVM, error) {
	vms := k.list()
	var names []string
	var match []keptVM
	for _, v := range vms {
		names = append(names, v.vm.Path())
		if name == "" || v.vm.Path() == name {
			match = append(match, v)
		}
	}
	switch {
	case len(match) == 1:
		return match[0], nil
	case name == "":
		return keptVM{}, fmt.Errorf(errFmtAttachName, strings.Join(names, ", "))
	case len(match) == 0:
		return keptVM{}, fmt.Errorf(errFmtAttachNoVM, name, strings.Join(names, ", "))
	}
	return keptVM{}, fmt.Errorf("several kept VMs are named `%s` (in %s and %s)", name, match[0].file, match[1].file)
}

// serve runs one attach session: a Lua state with the full test API and
// `vm` bound to the kept VM, fed chunk by chunk.
func (k *keeper) serve(ctx context.Context, c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	enc := json.NewEncoder(c)
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var hello attachMsg
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &hello) != nil {
		return
	}
	kv, err := k.pick(hello.Name)
	if err != nil {
		_ = enc.Encode(attachMsg{Error: err.Error()})
		return
	}
	in, err := runner.NewInteractive(ctx, k.opts, replChunk)
	if err != nil {
		_ = enc.Encode(attachMsg{Error: err.Error()})
		return
	}
	defer in.Close()
	in.API().SetGlobalVM("vm", kv.vm)
	bye := false
	exit := func(L *lua.Thread) (int, error) { bye = true; return 0, nil }
	in.L().PushFunction(exit)
	in.L().SetGlobal("exit")
	in.L().PushFunction(exit)
	in.L().SetGlobal("quit")
	if err := enc.Encode(attachMsg{Banner: fmt.Sprintf(attachBannerFmt, kv.vm.Path(), kv.file, kv.testName(), os.Getpid())}); err != nil {
		return
	}
	for !bye && sc.Scan() {
		var req attachMsg
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil || req.Src == nil {
			_ = enc.Encode(attachMsg{Error: "bad request"})
			continue
		}
		results, err := in.Eval(*req.Src, replChunk)
		in.ClearInterrupt()
		var resp attachMsg
		switch {
		case errors.Is(err, runner.ErrIncomplete):
			resp.Incomplete = true
		case err != nil:
			resp.Error = err.Error()
		default:
			resp.Results = results
		}
		resp.Bye = bye
		if enc.Encode(resp) != nil {
			return
		}
	}
}
