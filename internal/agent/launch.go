package agent

import (
	"errors"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// procSpec is a command resolved from an ExecReq, ready to start in its
// own process group.
type procSpec struct {
	path   string // program; a bare name when lookup is set
	lookup bool   // find path in the command's PATH at start
	argv   []string
	env    []string
	dir    string // "" inherits the starter's cwd
}

// child is a started command: its pid, a blocking reap, and signals that
// never reach a reused pid.
type child interface {
	Pid() int
	// Wait blocks until the command is reaped.
	Wait() (unix.WaitStatus, error)
	// Signal fails with errExited once the command is gone.
	Signal(sig unix.Signal) error
}

// launcher starts spec with stdio as fds 0, 1, 2. The agent starts
// commands itself (localLaunch); a worker asks its executor (workerProc).
type launcher func(spec procSpec, stdio [3]*os.File) (child, error)

// prepareSpec resolves r: the environment, the argv and the program. An
// agent command runs in / unless asked otherwise; a worker's inherits the
// worker's cwd (inheritCwd), which its own chdir calls set.
func prepareSpec(r proto.ExecReq, inheritCwd bool) (procSpec, error) {
	var env []string
	if !r.EnvClear {
		env = os.Environ()
	}
	spec := procSpec{env: mergeEnv(env, r.Env), dir: r.Cwd}
	if spec.dir == "" && !inheritCwd {
		spec.dir = "/"
	}
	if r.Shell {
		if len(r.Args) > 0 {
			return procSpec{}, &proto.Error{Message: "exec: shell form takes no args"}
		}
		spec.path, spec.argv = "/bin/sh", []string{"/bin/sh", "-c", r.Cmd}
		return spec, nil
	}
	if r.Cmd == "" {
		return procSpec{}, proto.ErrnoError(unix.ENOENT)
	}
	spec.path, spec.lookup = r.Cmd, !strings.Contains(r.Cmd, "/")
	spec.argv = append([]string{r.Cmd}, r.Args...)
	return spec, nil
}

// localLaunch starts spec as a child of the agent.
func localLaunch(spec procSpec, stdio [3]*os.File) (child, error) {
	path := spec.path
	if spec.lookup {
		p, err := lookPath(spec.path, spec.env)
		if err != nil {
			return nil, err
		}
		path = p
	}
	p, err := os.StartProcess(path, spec.argv, &os.ProcAttr{
		Dir:   spec.dir,
		Env:   spec.env,
		Files: stdio[:],
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		return nil, err
	}
	return osChild{p}, nil
}

// osChild is a command the agent started itself; os.Process signals
// through a pidfd.
type osChild struct{ p *os.Process }

func (c osChild) Pid() int { return c.p.Pid }

func (c osChild) Wait() (unix.WaitStatus, error) {
	st, err := c.p.Wait()
	if err != nil {
		return 0, err
	}
	ws, _ := st.Sys().(syscall.WaitStatus)
	return unix.WaitStatus(ws), nil
}

func (c osChild) Signal(sig unix.Signal) error {
	err := c.p.Signal(sig)
	if errors.Is(err, os.ErrProcessDone) {
		return errExited
	}
	return err
}
