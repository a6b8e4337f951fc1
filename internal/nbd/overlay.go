package nbd

import (
	"fmt"
	"os"
	"slices"
)

// SectorSize is the unit of the overlay and of the Disk API.
const SectorSize = 512

// DefaultMemLimit bounds the overlay's memory; held sectors beyond it spill
// to a temp file.
const DefaultMemLimit = 64 << 20

// overlay holds the guest's unflushed sectors. The first memLimit bytes of
// sectors live in memory chunks (allocated on demand, a few kept across
// flushes), later ones in a spill file created on demand; a rewritten
// sector reuses its slot. Not safe for concurrent use (Export guards it).
type overlay struct {
	idx      map[int64]int64 // sector -> slot
	chunks   [][]byte        // memory slots, chunkSlots per chunk
	memSlots int64
	spillDir string
	spill    *os.File // slots >= memSlots, at (slot-memSlots)*SectorSize
	next     int64    // first unused slot
}

const (
	chunkSlots = 2048 // 1 MiB chunks
	// keptChunks is how much chunk memory a flush keeps for the next burst.
	keptChunks = 8
)

func newOverlay(memLimit int64, spillDir string) *overlay {
	slots := memLimit / SectorSize
	if slots < 1 {
		slots = 1
	}
	return &overlay{idx: map[int64]int64{}, memSlots: slots, spillDir: spillDir}
}

// memSlot returns the bytes of memory slot n, allocating its chunk.
func (o *overlay) memSlot(n int64) []byte {
	c, i := n/chunkSlots, n%chunkSlots
	for int64(len(o.chunks)) <= c {
		size := min(int64(chunkSlots), o.memSlots-int64(len(o.chunks))*chunkSlots)
		o.chunks = append(o.chunks, make([]byte, size*SectorSize))
	}
	return o.chunks[c][i*SectorSize : (i+1)*SectorSize]
}

// run returns the memory holding slots [n, n+k) when they share a chunk.
func (o *overlay) run(n, k int64) ([]byte, bool) {
	if n+k > o.memSlots || n/chunkSlots != (n+k-1)/chunkSlots {
		return nil, false
	}
	c, i := n/chunkSlots, n%chunkSlots
	return o.chunks[c][i*SectorSize : (i+k)*SectorSize], true
}

func (o *overlay) len() int { return len(o.idx) }

// get copies sector s into buf (SectorSize bytes) and says whether it is held.
func (o *overlay) get(s int64, buf []byte) (bool, error) {
	slot, ok := o.idx[s]
	if !ok {
		return false, nil
	}
	if slot < o.memSlots {
		copy(buf, o.memSlot(slot))
		return true, nil
	}
	if _, err := o.spill.ReadAt(buf[:SectorSize], (slot-o.memSlots)*SectorSize); err != nil {
		return true, fmt.Errorf("nbd: reading overlay spill: %w", err)
	}
	return true, nil
}

// put holds data (SectorSize bytes) as sector s.
func (o *overlay) put(s int64, data []byte) error {
	slot, ok := o.idx[s]
	if !ok {
		slot = o.next
		o.next++
	}
	if slot < o.memSlots {
		copy(o.memSlot(slot), data[:SectorSize])
		o.idx[s] = slot
		return nil
	}
	if o.spill == nil {
		f, err := os.CreateTemp(o.spillDir, "nbd-overlay-")
		if err != nil {
			return fmt.Errorf("nbd: creating overlay spill file: %w", err)
		}
		os.Remove(f.Name()) // lives while open
		o.spill = f
	}
	if _, err := o.spill.WriteAt(data[:SectorSize], (slot-o.memSlots)*SectorSize); err != nil {
		return fmt.Errorf("nbd: writing overlay spill: %w", err)
	}
	o.idx[s] = slot
	return nil
}

// slot is where sector s is held.
func (o *overlay) slot(s int64) int64 { return o.idx[s] }

// sorted lists the held sectors in ascending order.
func (o *overlay) sorted() []int64 {
	ss := make([]int64, 0, len(o.idx))
	for s := range o.idx {
		ss = append(ss, s)
	}
	slices.Sort(ss)
	return ss
}

// reset drops every held sector, keeping the memory for reuse but not the
// spill file's blocks.
func (o *overlay) reset() {
	clear(o.idx)
	o.next = 0
	if o.spill != nil {
		o.spill.Close()
		o.spill = nil
	}
	if len(o.chunks) > keptChunks {
		o.chunks = o.chunks[:keptChunks] // a big burst does not pin its memory
	}
}

func (o *overlay) close() {
	o.reset()
	o.chunks = nil
}

// spilled says whether any sector lives in the spill file (tests).
func (o *overlay) spilled() bool { return o.next > o.memSlots }
