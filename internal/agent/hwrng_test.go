package agent

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/provium/provium/internal/proto"
)

// fakeHWRNG models the Linux 6.1 hwrng core over the virtio-rng driver:
// the driver holds one block the host filled (fills), the core fetches up
// to a block from it into a buffer only readers of /dev/hwrng use and hands
// out that buffer's tail. before runs ahead of every read of the sync, so
// a test can let the kernel's hwrng thread take a block at any point.
type fakeHWRNG struct {
	fills  [][]byte // blocks the host sent, in order
	cur    []byte   // what is left of the block the driver holds
	core   []byte   // the core's buffer (data_avail bytes)
	reads  int
	before func(n int, f *fakeHWRNG)
}

// driverRead is virtio_read: copy what the driver holds, then (wait) go
// on with the next blocks until size bytes.
func (f *fakeHWRNG) driverRead(size int, wait bool) []byte {
	var out []byte
	for len(out) < size {
		if len(f.cur) == 0 {
			if !wait || len(f.fills) == 0 {
				break
			}
			f.cur, f.fills = f.fills[0], f.fills[1:]
		}
		n := min(size-len(out), len(f.cur))
		out = append(out, f.cur[:n]...)
		f.cur = f.cur[n:]
	}
	return out
}

// thread is one read of the kernel's hwrng thread: a whole block, waiting.
func (f *fakeHWRNG) thread() { f.driverRead(proto.HWRNGBlock, true) }

// devRead is rng_dev_read.
func (f *fakeHWRNG) devRead(p []byte, wait bool) int {
	got := 0
	for got < len(p) {
		if len(f.core) == 0 {
			f.core = f.driverRead(proto.HWRNGBlock, wait)
			if len(f.core) == 0 {
				break
			}
		}
		n := min(len(f.core), len(p)-got)
		copy(p[got:], f.core[len(f.core)-n:])
		f.core = f.core[:len(f.core)-n]
		got += n
	}
	return got
}

func (f *fakeHWRNG) ReadBlocking(p []byte) error {
	f.reads++
	if f.before != nil {
		f.before(f.reads, f)
	}
	if f.devRead(p, true) != len(p) {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func (f *fakeHWRNG) ReadNow(p []byte) (int, error) {
	f.reads++
	if f.before != nil {
		f.before(f.reads, f)
	}
	return f.devRead(p, false), nil
}

// newFake is a driver after boot: bootBlocks blocks of another stream
// still to come (the host restarted the seed's stream after them), and the
// kernel's early half-block read done when half.
func newFake(seed uint64, bootBlocks, streamBlocks int, half bool) *fakeHWRNG {
	r := rand.New(rand.NewPCG(seed, 7))
	f := &fakeHWRNG{}
	for i := 0; i < bootBlocks; i++ {
		b := make([]byte, proto.HWRNGBlock)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		f.fills = append(f.fills, b)
	}
	s := make([]byte, streamBlocks*proto.HWRNGBlock)
	io.ReadFull(proto.RNGStream(seed), s)
	for i := 0; i < streamBlocks; i++ {
		f.fills = append(f.fills, s[i*proto.HWRNGBlock:(i+1)*proto.HWRNGBlock])
	}
	f.cur, f.fills = f.fills[0], f.fills[1:]
	if half {
		f.cur = f.cur[hwrngHalf:]
	}
	return f
}

func TestSyncHWRNGLeavesTheStartBlockForReaders(t *testing.T) {
	const seed, start = 42, 8 * proto.HWRNGBlock
	want := make([]byte, start+proto.HWRNGBlock)
	io.ReadFull(proto.RNGStream(seed), want)
	want = want[start : start+proto.HWRNGPreloaded]
	threadAt := func(reads ...int) func(int, *fakeHWRNG) {
		return func(n int, f *fakeHWRNG) {
			for _, r := range reads {
				if n == r {
					f.thread()
				}
			}
		}
	}
	cases := []struct {
		name     string
		boot     int
		half     bool
		leftover int // bytes an earlier reader left in the core's buffer
		extra    func(int, *fakeHWRNG)
	}{
		{"aligned", 2, false, 0, nil},
		{"after the early half read", 2, true, 0, nil},
		{"no boot blocks left", 1, false, 0, nil},
		{"half, one boot block", 1, true, 0, nil},
		{"thread reads meanwhile", 3, false, 0, threadAt(1, 3, 5)},
		{"thread reads meanwhile, half", 3, true, 0, threadAt(2, 4)},
		{"thread takes the half block's neighbour", 2, true, 0, threadAt(3)},
		{"a reader left 56 bytes", 2, false, 56, nil},
		{"a reader left 8 bytes, half", 2, true, 8, nil},
		{"a reader left 33 bytes, thread", 3, false, 33, threadAt(2, 4)},
		{"a reader left 63 bytes, half, thread", 3, true, 63, threadAt(1, 3)},
		{"a reader left 1 byte", 1, false, 1, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(seed, c.boot, 40, c.half)
			f.core = bytes.Repeat([]byte{0xa5}, c.leftover)
			f.before = c.extra
			if _, err := syncHWRNG(context.Background(), f, proto.HWRNGSyncReq{Seed: seed, Start: start}); err != nil {
				t.Fatal(err)
			}
			// A reader gets the preloaded bytes whatever the thread does.
			f.thread()
			got := make([]byte, proto.HWRNGPreloaded)
			if f.devRead(got, true) != len(got) || !bytes.Equal(got, want) {
				t.Fatalf("readers get %x, want %x", got, want)
			}
		})
	}
}

func TestSyncHWRNGFailures(t *testing.T) {
	const seed, start = 42, 8 * proto.HWRNGBlock
	req := proto.HWRNGSyncReq{Seed: seed, Start: start}
	// The thread takes the start block between the last check and the
	// preload: the sync reports it instead of leaving other bytes.
	f := newFake(seed, 1, 40, false)
	f.before = func(n int, f *fakeHWRNG) {
		if len(f.core) == 0 && len(f.cur) == 0 && len(f.fills) == 40-8 {
			f.thread()
		}
	}
	if _, err := syncHWRNG(context.Background(), f, req); err == nil || !strings.Contains(err.Error(), "went elsewhere") {
		t.Fatalf("thread took the start block: err = %v", err)
	}
	// The seed's stream never comes (another seed's does).
	f = newFake(seed+1, 1, 40, false)
	if _, err := syncHWRNG(context.Background(), f, req); err == nil || !strings.Contains(err.Error(), "did not show up") {
		t.Fatalf("wrong stream: err = %v", err)
	}
	// Past the start before the sync began.
	f = newFake(seed, 0, 40, false)
	f.cur = nil
	f.fills = f.fills[10:]
	if _, err := syncHWRNG(context.Background(), f, req); err == nil {
		t.Fatal("a guest past the start synced")
	}
	for _, bad := range []uint64{0, 100, hwrngSyncMaxStart + proto.HWRNGBlock} {
		if _, err := hwrngSync(context.Background(), proto.HWRNGSyncReq{Seed: seed, Start: bad}); err == nil || !strings.Contains(err.Error(), "must be a multiple of 64") {
			t.Fatalf("start %d: err = %v", bad, err)
		}
	}
}
