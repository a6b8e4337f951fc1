package guest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/provium/provium/internal/proto"
)

// rngFeed is what a seeded VM's virtio-rng device carries. While the guest
// boots it is a boot stream of the seed (never held back: a kernel thread
// that waits for the hwrng can stall the boot); once the agent answers, the
// host restarts the seed's stream (proto.RNGStream) and asks the agent to
// line /dev/hwrng up with it (syncHWRNG).
type rngFeed struct {
	seed uint64
	mu   sync.Mutex
	src  io.Reader
}

func newRNGFeed(seed uint64) *rngFeed {
	return &rngFeed{seed: seed, src: proto.RNGBootStream(seed)}
}

// Read serves the current stream.
func (f *rngFeed) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.src.Read(p)
}

// boot goes back to the boot stream (the guest reboots).
func (f *rngFeed) boot() {
	f.mu.Lock()
	f.src = proto.RNGBootStream(f.seed)
	f.mu.Unlock()
}

// restart starts the seed's stream from its first byte.
func (f *rngFeed) restart() {
	f.mu.Lock()
	f.src = proto.RNGStream(f.seed)
	f.mu.Unlock()
}

// hwrngStart is the offset of the seed's stream that /dev/hwrng readers get
// first after a boot: far enough in that the blocks the kernel's own reader
// may take while the agent syncs never pass it.
const hwrngStart = 16 * proto.HWRNGBlock

// hwrngSyncTimeout bounds the sync; it is a few dozen reads normally.
const hwrngSyncTimeout = 30 * time.Second

// syncHWRNG restarts the seed's stream and has the agent line /dev/hwrng up
// with it, so the first proto.HWRNGPreloaded bytes read from /dev/hwrng are
// the same in every VM of the seed. A guest without a hwrng, or an agent
// without the op, is left as it is; a failed sync is kept for HWRNGSynced
// and never fails the boot.
func (g *Machine) syncHWRNG(ctx context.Context) {
	g.hwrngErr.Store(nil)
	ag, err := g.Agent()
	if err == nil && !slices.Contains(ag.Hello().Features, proto.OpHWRNGSync) {
		err = fmt.Errorf("the agent has no %s", proto.OpHWRNGSync)
	}
	if err == nil {
		g.rng.restart()
		ctx, cancel := context.WithTimeout(ctx, hwrngSyncTimeout)
		defer cancel()
		_, err = ag.HWRNGSync(ctx, proto.HWRNGSyncReq{Seed: proto.Seed(g.rng.seed), Start: hwrngStart})
	}
	if err != nil {
		g.hwrngErr.Store(&err)
	}
}

// HWRNGSynced reports how the last boot's /dev/hwrng sync went (nil: the
// guest's first reads are the seed's stream at hwrngStart).
func (g *Machine) HWRNGSynced() error {
	if p := g.hwrngErr.Load(); p != nil {
		return *p
	}
	return nil
}
