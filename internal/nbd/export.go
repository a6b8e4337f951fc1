package nbd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/provium/provium/internal/sparse"
	"golang.org/x/sys/unix"
)

// Options configure an Export.
type Options struct {
	Name     string // export name; the default export "" is always accepted
	Path     string // raw image; its size at Open is the export's size
	ReadOnly bool
	// Control is the disk's shared fault state; nil gets a private one.
	Control *Control
	// MemLimit bounds the unflushed overlay's memory (DefaultMemLimit when
	// 0); SpillDir holds its spill file ("" = os.TempDir()).
	MemLimit int64
	SpillDir string
}

// Counters count guest requests per kind (failed ones included) and the
// failures.
type Counters struct {
	Reads, Writes, Flushes, Trims uint64
	Errors                        uint64 // requests answered with an error
	BytesRead, BytesWritten       uint64
}

// ErrClosed is returned by operations on a closed Export.
var ErrClosed = errors.New("nbd: export closed")

// Export serves one raw image. Guest writes are held in an overlay until a
// flush; host-side reads see the overlay, host-side writes are durable.
type Export struct {
	name     string
	readOnly bool
	ctl      *Control

	mu        sync.Mutex // guards the image, overlay and unflushed
	f         *os.File
	size      int64
	ov        *overlay
	unflushed int // guest write requests held in the overlay
	closed    bool

	counters struct{ reads, writes, flushes, trims, errors, bytesRead, bytesWritten atomic.Uint64 }

	connMu sync.Mutex
	conns  map[*conn]struct{}
	lns    []listener
	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// Open opens the image at opts.Path for serving.
func Open(opts Options) (*Export, error) {
	flag := os.O_RDWR
	if opts.ReadOnly {
		flag = os.O_RDONLY
	}
	f, err := os.OpenFile(opts.Path, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("nbd: opening image: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("nbd: opening image: %w", err)
	}
	if opts.Control == nil {
		opts.Control = NewControl()
	}
	if opts.MemLimit <= 0 {
		opts.MemLimit = DefaultMemLimit
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Export{
		name: opts.Name, readOnly: opts.ReadOnly, ctl: opts.Control,
		f: f, size: st.Size(), ov: newOverlay(opts.MemLimit, opts.SpillDir),
		conns: map[*conn]struct{}{}, ctx: ctx, cancel: cancel,
	}, nil
}

// Size is the export's size in bytes.
func (e *Export) Size() int64 { return e.size }

// Control is the export's fault state.
func (e *Export) Control() *Control { return e.ctl }

// Counters returns the request counters.
func (e *Export) Counters() Counters {
	c := &e.counters
	return Counters{
		Reads: c.reads.Load(), Writes: c.writes.Load(), Flushes: c.flushes.Load(), Trims: c.trims.Load(),
		Errors: c.errors.Load(), BytesRead: c.bytesRead.Load(), BytesWritten: c.bytesWritten.Load(),
	}
}

// Unflushed is how many guest write requests the overlay holds.
func (e *Export) Unflushed() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.unflushed
}

// ReadAt reads the current view (image with the overlay on top); reads
// past the end are short (io.EOF-free: n says how much).
func (e *Export) ReadAt(p []byte, off int64) (int, error) {
	return e.hostRead(p, off, e.readView)
}

// ReadCommittedAt reads what the image itself holds: guest writes still
// held in the overlay are left out, so it shows what a power cut would
// keep. Host-side read_sectors uses it (upstream reads the backing file, and
// real power-loss suites check that an unflushed write is not there yet).
// Reads past the end are short, as with ReadAt.
func (e *Export) ReadCommittedAt(p []byte, off int64) (int, error) {
	return e.hostRead(p, off, func(p []byte, off int64) error {
		e.readImage(p, off)
		return nil
	})
}

// hostRead checks and cuts a host-side read to the export's size, then
// fills it with fill under the export's lock.
func (e *Export) hostRead(p []byte, off int64, fill func([]byte, int64) error) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0, ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("nbd: read at negative offset %d", off)
	}
	if off >= e.size {
		return 0, nil
	}
	p = p[:min(int64(len(p)), e.size-off)]
	return len(p), fill(p, off)
}

// readImage fills p from the image alone.
func (e *Export) readImage(p []byte, off int64) {
	if n, err := e.f.ReadAt(p, off); err != nil && n < len(p) {
		// The file may have shrunk under us; what is missing reads as zeros.
		clear(p[n:])
	}
}

// readView fills p from the image, then patches in held sectors.
func (e *Export) readView(p []byte, off int64) error {
	e.readImage(p, off)
	if e.ov.len() == 0 {
		return nil
	}
	var sec [SectorSize]byte
	for s := off / SectorSize; s*SectorSize < off+int64(len(p)); s++ {
		held, err := e.ov.get(s, sec[:])
		if err != nil {
			return err
		}
		if !held {
			continue
		}
		lo, hi := max(s*SectorSize, off), min((s+1)*SectorSize, off+int64(len(p)))
		copy(p[lo-off:hi-off], sec[lo-s*SectorSize:hi-s*SectorSize])
	}
	return nil
}

// holdWrite puts a guest write into the overlay, merging partial sectors
// with the current view.
func (e *Export) holdWrite(p []byte, off int64) error {
	var sec [SectorSize]byte
	end := off + int64(len(p))
	for s := off / SectorSize; s*SectorSize < end; s++ {
		lo, hi := max(s*SectorSize, off), min((s+1)*SectorSize, end)
		if lo == s*SectorSize && hi == (s+1)*SectorSize {
			if err := e.ov.put(s, p[lo-off:hi-off]); err != nil { // a whole sector
				return err
			}
			continue
		}
		if err := e.readView(sec[:], s*SectorSize); err != nil {
			return err
		}
		copy(sec[lo-s*SectorSize:], p[lo-off:hi-off])
		if err := e.ov.put(s, sec[:]); err != nil {
			return err
		}
	}
	e.unflushed++
	return nil
}

// WriteDurable writes p at off straight to the image and syncs it; held
// sectors it touches are updated too, so the guest's view and a later
// power cut both keep it. Writes past the end are cut short with an error.
func (e *Export) WriteDurable(p []byte, off int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if e.readOnly {
		return fmt.Errorf("nbd: export %q is read-only", e.name)
	}
	return e.writeDurable(p, off)
}

func (e *Export) writeDurable(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > e.size {
		return fmt.Errorf("nbd: write of %d bytes at %d is past the end (%d bytes)", len(p), off, e.size)
	}
	if _, err := e.f.WriteAt(p, off); err != nil {
		return fmt.Errorf("nbd: writing image: %w", err)
	}
	if e.ov.len() > 0 {
		var sec [SectorSize]byte
		end := off + int64(len(p))
		for s := off / SectorSize; s*SectorSize < end; s++ {
			held, err := e.ov.get(s, sec[:])
			if err != nil {
				return err
			}
			if !held {
				continue
			}
			lo, hi := max(s*SectorSize, off), min((s+1)*SectorSize, end)
			copy(sec[lo-s*SectorSize:], p[lo-off:hi-off])
			if err := e.ov.put(s, sec[:]); err != nil {
				return err
			}
		}
	}
	if err := unix.Fdatasync(int(e.f.Fd())); err != nil {
		return fmt.Errorf("nbd: syncing image: %w", err)
	}
	return nil
}

// Flush writes the held sectors to the image (coalescing runs) and syncs it.
func (e *Export) Flush() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	return e.flush()
}

func (e *Export) flush() error {
	if e.ov.len() > 0 {
		if err := e.writeHeld(); err != nil {
			return fmt.Errorf("nbd: flushing: %w", err)
		}
	}
	if err := unix.Fdatasync(int(e.f.Fd())); err != nil {
		return fmt.Errorf("nbd: syncing image: %w", err)
	}
	e.ov.reset()
	e.unflushed = 0
	return nil
}

// writeHeld writes the held sectors to the image in runs: sectors that
// follow each other in the image and in one memory chunk (a sequential
// write) go out straight from the overlay, others through a buffer.
func (e *Export) writeHeld() error {
	ss := e.ov.sorted()
	var buf []byte
	var sec [SectorSize]byte
	for i := 0; i < len(ss); {
		s, slot := ss[i], e.ov.slot(ss[i])
		k, maxK := int64(1), chunkSlots-slot%chunkSlots // a run stays in one chunk
		for i+int(k) < len(ss) && ss[i+int(k)] == s+k && e.ov.slot(ss[i+int(k)]) == slot+k && k < maxK {
			k++
		}
		if mem, ok := e.ov.run(slot, k); ok {
			if _, err := e.f.WriteAt(mem, s*SectorSize); err != nil {
				return err
			}
			i += int(k)
			continue
		}
		// Spilled or split across chunks: one sector at a time via buf.
		buf = buf[:0]
		start := s
		for j := int64(0); j < k; j++ {
			if _, err := e.ov.get(s+j, sec[:]); err != nil {
				return err
			}
			buf = append(buf, sec[:]...)
		}
		if _, err := e.f.WriteAt(buf, start*SectorSize); err != nil {
			return err
		}
		i += int(k)
	}
	return nil
}

// PowerCut drops every guest write not yet flushed and returns how many
// write requests that was. The guest keeps running.
func (e *Export) PowerCut() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := e.unflushed
	e.ov.reset()
	e.unflushed = 0
	return n
}

// SaveView copies the current view (held writes included) to a new
// sparse file at path; the guest must be quiescent for a consistent copy
// (snapshots stop it first).
func (e *Export) SaveView(path string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := sparse.CopyFile(out, e.f, e.size); err != nil {
		out.Close()
		return err
	}
	var sec [SectorSize]byte
	for _, s := range e.ov.sorted() {
		if _, err := e.ov.get(s, sec[:]); err != nil {
			out.Close()
			return err
		}
		if _, err := out.WriteAt(sec[:], s*SectorSize); err != nil {
			out.Close()
			return err
		}
	}
	return out.Close()
}

// Close stops serving: listeners and connections close, in-flight
// requests end, and the image is closed. Held writes are dropped, as
// when the power goes.
func (e *Export) Close() error {
	e.cancel()
	e.connMu.Lock()
	for _, l := range e.lns {
		l.Close()
	}
	for c := range e.conns {
		c.nc.Close()
	}
	e.connMu.Unlock()
	e.wg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	e.ov.close()
	return e.f.Close()
}
