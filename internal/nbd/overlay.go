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
// sectors live in memory, later ones in a spill file created on demand; a
// rewritten sector reuses its slot. Not safe for concurrent use (Export
// guards it).
type overlay struct {
	idx      map[int64]int64 // sector -> slot
	mem      []byte          // slots [0, memSlots)
	memSlots int64
	spillDir string
	spill    *os.File // slots >= memSlots, at (slot-memSlots)*SectorSize
	next     int64    // first unused slot
}

func newOverlay(memLimit int64, spillDir string) *overlay {
	slots := memLimit / SectorSize
	if slots < 1 {
		slots = 1
	}
	return &overlay{idx: map[int64]int64{}, memSlots: slots, spillDir: spillDir}
}

func (o *overlay) len() int { return len(o.idx) }

// get copies sector s into buf (SectorSize bytes) and says whether it is held.
func (o *overlay) get(s int64, buf []byte) (bool, error) {
	slot, ok := o.idx[s]
	if !ok {
		return false, nil
	}
	if slot < o.memSlots {
		copy(buf, o.mem[slot*SectorSize:(slot+1)*SectorSize])
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
		if slot < o.memSlots && int64(len(o.mem)) < (slot+1)*SectorSize {
			// Grow geometrically, never past the limit.
			want := max(2*int64(len(o.mem)), 64*SectorSize)
			want = min(want, o.memSlots*SectorSize)
			o.mem = append(o.mem, make([]byte, want-int64(len(o.mem)))...)
		}
	}
	if slot < o.memSlots {
		copy(o.mem[slot*SectorSize:], data[:SectorSize])
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
	if int64(len(o.mem)) > 1<<20 {
		o.mem = nil // a big burst does not pin its memory forever
	}
}

func (o *overlay) close() {
	o.reset()
	o.mem = nil
}

// spilled says whether any sector lives in the spill file (tests).
func (o *overlay) spilled() bool { return o.next > o.memSlots }
