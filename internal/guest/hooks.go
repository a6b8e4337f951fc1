package guest

import (
	"sync"
	"time"
)

// Hooks hear each machine's life for the event stream and the trace view
// (30-runtime.md C2 vm_spawned/vm_shutdown). file is the ForFile key (the
// file's display path), vm the VM's path (`dc1/a`). Nil fields are
// skipped. They run on the booting goroutine or the machine's watcher and
// must not block.
type Hooks struct {
	// Spawned: the agent of a new machine answered. how is "boot" or
	// "restore"; began is when its QEMU was started.
	Spawned func(file, vm, profile string, memory uint64, cpus int, how string, began time.Time)
	// Exited: the QEMU process of a spawned machine is gone; up is the
	// time since Spawned. Called once per machine, before Stop returns
	// when the stop was requested.
	Exited func(file, vm string, up time.Duration)
	// Snapshot: a snapshot of the machine was saved, taking d.
	Snapshot func(file, vm string, began time.Time, d time.Duration)
}

// life is what a machine needs to report its spawn and exit once.
type life struct {
	hooks   *Hooks
	file    string
	vm      string
	spawned time.Time
	once    sync.Once
}

func (b *Backend) newLife(file, vm string) *life {
	return &life{hooks: &b.opts.Hooks, file: file, vm: vm}
}

// spawn reports the machine's agent answering.
func (l *life) spawn(profile string, memory int64, cpus int, how string, began time.Time) {
	if l == nil {
		return
	}
	l.spawned = time.Now()
	if f := l.hooks.Spawned; f != nil {
		f(l.file, l.vm, profile, uint64(max(memory, 0)), cpus, how, began)
	}
}

// exit reports the QEMU process gone, once, and only for a spawned machine.
func (l *life) exit() {
	if l == nil || l.spawned.IsZero() {
		return
	}
	l.once.Do(func() {
		if f := l.hooks.Exited; f != nil {
			f(l.file, l.vm, time.Since(l.spawned))
		}
	})
}
