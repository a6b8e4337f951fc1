package agent

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/provium/provium/internal/proto"
)

// Call threads. Upstream's agent serves each op on a thread of its own that
// ends with the op (a batch: all its items on one thread, in order), and
// real suites depend on it: per-thread state a raw syscall changes
// (credentials, capabilities, signal mask, impersonation, per-thread
// namespaces) lasts for the call, or for the batch, and never reaches a
// later one, while process-wide state (fds, mounts, cwd) stays. So each
// agent syscall, ioctl and batch runs on a goroutine that locks its OS
// thread and never unlocks it: the runtime ends the thread with the
// goroutine. The thread it locks is clean because Go leaves no per-thread
// state behind on the threads it shares.
//
// Creating and ending a thread costs far more than the syscall under TCG
// (measured in the guest: ~0.2–1 ms against ~20–80 µs for handing the call
// to a thread that lives on), so neither happens while the host waits: a
// session keeps call threads started ahead of time, and a thread whose call
// is done stays parked (running nothing else: it is locked) until the reply
// is written, then ends. Both happen in afterReply, while the guest waits
// for the host's next request.

// callThreads is the number of call threads a session keeps ready.
const callThreads = 2

// callThreadKey marks a context whose op already runs on a call thread
// (the items of a batch), so its syscalls run inline on that thread.
type callThreadKey struct{}

// onCallThreadOps are the agent ops that run on a call thread.
var onCallThreadOps = map[string]bool{proto.OpSyscall: true, proto.OpIoctl: true, proto.OpBatch: true}

// threadPool is a session's call threads: ready ones and spent ones.
type threadPool struct {
	mu     sync.Mutex
	ready  []chan func()   // each served by one locked goroutine, for one job; nil ends it unused
	spent  []chan struct{} // threads whose call is done, ending once closed
	closed bool
}

// take returns a ready thread's job channel, or nil when none is ready.
func (p *threadPool) take() chan<- func() {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.ready)
	if n == 0 {
		return nil
	}
	t := p.ready[n-1]
	p.ready = p.ready[:n-1]
	return t
}

// spend registers the calling call thread as done; it ends once the
// returned channel is closed.
func (p *threadPool) spend() <-chan struct{} {
	release := make(chan struct{})
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		close(release)
		return release
	}
	p.spent = append(p.spent, release)
	return release
}

// release ends the spent threads and starts call threads until callThreads
// are ready.
func (p *threadPool) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.spent {
		close(r)
	}
	p.spent = nil
	for !p.closed && len(p.ready) < callThreads {
		jobs := make(chan func(), 1)
		p.ready = append(p.ready, jobs)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with us
			if f := <-jobs; f != nil {
				f()
			}
		}()
	}
}

// close ends every thread of the pool once its call (if any) is done;
// later calls start threads of their own, which end right after the call.
func (p *threadPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, r := range p.spent {
		close(r)
	}
	for _, t := range p.ready {
		t <- nil
	}
	p.spent, p.ready = nil, nil
}

// afterReply ends spent call threads and readies new ones once the reply
// to an op that used one is written.
func (s *Server) afterReply(sess *session, op string) {
	if s.wp == nil && onCallThreadOps[op] {
		sess.threads.release()
	}
}

// onCallThread runs f on a call thread of pool (a new one when none is
// ready). Inside a batch's thread f runs inline. Otherwise a cancelled ctx
// stops the wait unless wait is set (a raw syscall cannot be abandoned: it
// finishes on its thread and its result is dropped). A panic in f is
// returned as an error: the agent must stay up.
func onCallThread(ctx context.Context, pool *threadPool, wait bool, f func(ctx context.Context)) error {
	if ctx.Value(callThreadKey{}) != nil {
		f(ctx)
		return nil
	}
	done := make(chan error, 1)
	call := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("agent internal error: %v", r)
			}
		}()
		f(context.WithValue(ctx, callThreadKey{}, true))
		return nil
	}
	job := func() {
		err := call()
		release := pool.spend() // before the reply can be written
		done <- err
		<-release
	}
	if t := pool.take(); t != nil {
		t <- job // buffered: the thread takes it when it runs
	} else {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with us
			job()
		}()
	}
	if wait {
		return <-done
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
