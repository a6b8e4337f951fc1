package guest

import (
	"context"
	"sync"

	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/netsim"
)

// Lazy creates the Backend at the first boot of the run, so a run that
// boots nothing pays for neither the run directory nor the KVM probe.
type Lazy struct {
	Make func(ctx context.Context) (*Backend, error)

	mu  sync.Mutex
	b   *Backend
	err error

	netOnce sync.Once
	net     *netsim.Host
}

func (l *Lazy) get(ctx context.Context) (*Backend, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b == nil && l.err == nil {
		l.b, l.err = l.Make(ctx)
	}
	return l.b, l.err
}

// ForFile returns the lab.Backend of one file.
func (l *Lazy) ForFile(file string) lab.Backend { return &lazyFile{l: l, file: file} }

// Close removes the run directory if a backend was made.
func (l *Lazy) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b == nil {
		return nil
	}
	return l.b.Close()
}

type lazyFile struct {
	l    *Lazy
	file string
}

func (f *lazyFile) Start(ctx context.Context, spec lab.BootSpec) (lab.Machine, error) {
	b, err := f.l.get(ctx)
	if err != nil {
		return nil, err
	}
	return b.start(ctx, f.file, spec)
}
