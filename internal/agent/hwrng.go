package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// hwrngDevice is /dev/hwrng as the sync sees it. The Linux hwrng core
// fetches proto.HWRNGBlock bytes at a time from the virtio-rng driver into
// a buffer that only /dev/hwrng readers use, and hands a reader the tail of
// what it fetched; the driver holds one block the host filled and asks for
// the next once it is empty. A blocking read of a whole block therefore
// returns the next HWRNGBlock bytes the driver has (crossing into the next
// block when a half is left), and a non-blocking read returns at most what
// the driver holds right now.
type hwrngDevice interface {
	// ReadBlocking reads exactly len(p) bytes, waiting for the host.
	ReadBlocking(p []byte) error
	// ReadNow reads what the driver holds, up to len(p); 0 when it is
	// waiting for the host.
	ReadNow(p []byte) (int, error)
}

// hwrngPath is the kernel's hwrng character device.
const hwrngPath = "/dev/hwrng"

// Sync limits: the kernel's reads are rare (its hwrng thread reads one
// block per reseed interval, a second or more), so these are generous.
const (
	hwrngSyncBootReads = 32                   // blocks read before the seed's stream shows up
	hwrngSyncNowWait   = 2 * time.Second      // for a non-blocking read to find the half block
	hwrngSyncPoll      = 1 * time.Millisecond // between non-blocking tries
	hwrngSyncMaxStart  = 1 << 20              // largest Start accepted
	hwrngHalf          = proto.HWRNGBlock / 2 // the early-randomness read of the kernel
	hwrngCheck         = proto.HWRNGBlock - proto.HWRNGPreloaded
	hwrngSyncFmt       = "hwrng_sync: %s"
	hwrngSyncWhere     = "stream offset %d (wanted %d)"
)

// hwrngSync performs OpHWRNGSync on the real device.
func hwrngSync(ctx context.Context, r proto.HWRNGSyncReq) (proto.HWRNGSyncResp, error) {
	if r.Start%proto.HWRNGBlock != 0 || r.Start < proto.HWRNGBlock || r.Start > hwrngSyncMaxStart {
		return proto.HWRNGSyncResp{}, &proto.Error{Message: fmt.Sprintf(hwrngSyncFmt, fmt.Sprintf("start %d must be a multiple of %d in [%d, %d]", r.Start, proto.HWRNGBlock, proto.HWRNGBlock, hwrngSyncMaxStart))}
	}
	dev, err := openHWRNG()
	if err != nil {
		return proto.HWRNGSyncResp{}, err
	}
	defer dev.Close()
	return syncHWRNG(ctx, dev, r)
}

// syncHWRNG reads dev until the driver's next block is the one at r.Start of
// the seed's stream, then reads that block's last hwrngCheck bytes, which
// leaves the rest in the hwrng core's buffer for the guest's readers.
//
// Every block the host sent since it restarted the stream is a whole block
// of the stream at a multiple of HWRNGBlock, and the kernel's own readers
// (the hwrng thread, a block per reseed interval) take whole blocks too, so
// where each read ends can be found by content; only the kernel's one
// half-block read at boot can leave the driver holding half a block.
func syncHWRNG(ctx context.Context, dev hwrngDevice, r proto.HWRNGSyncReq) (proto.HWRNGSyncResp, error) {
	var out proto.HWRNGSyncResp
	stream := make([]byte, r.Start+proto.HWRNGBlock)
	if _, err := io.ReadFull(proto.RNGStream(uint64(r.Seed)), stream); err != nil {
		return out, err
	}
	fail := func(what string) (proto.HWRNGSyncResp, error) {
		return out, &proto.Error{Message: fmt.Sprintf(hwrngSyncFmt, what)}
	}
	block := make([]byte, proto.HWRNGBlock)
	read := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := dev.ReadBlocking(block); err != nil {
			return fmt.Errorf("hwrng_sync: reading %s: %w", hwrngPath, err)
		}
		out.Consumed += uint64(len(block))
		return nil
	}
	// 1. Read until a read is known to end inside the stream. An earlier
	// reader may have left L bytes in the core's buffer (the first L of
	// the block it fetched last): every 64-byte read then returns those
	// and the last 64-L bytes of the next fetch, leaving its first L, so
	// two reads give a whole fetched block for the right L. Once L is
	// known, reading exactly L bytes empties the core's buffer.
	at := halfIndex(stream[:r.Start])
	pos := -1
	var prev []byte
	emptied := false
	for i := 0; pos < 0; i++ {
		if i == hwrngSyncBootReads {
			return fail(fmt.Sprintf("the seed's stream did not show up in %d reads", hwrngSyncBootReads))
		}
		if err := read(); err != nil {
			return out, err
		}
		cur := bytes.Clone(block)
		if emptied {
			if q, ok := at[string(cur)]; ok {
				pos = q + proto.HWRNGBlock
			}
			continue
		}
		for l := 0; prev != nil && l < proto.HWRNGBlock && !emptied; l++ {
			if _, ok := at[string(cur[:l])+string(prev[l:])]; !ok {
				continue
			}
			emptied = true
			if l > 0 {
				if err := dev.ReadBlocking(block[:l]); err != nil {
					return out, fmt.Errorf("hwrng_sync: reading %s: %w", hwrngPath, err)
				}
				out.Consumed += uint64(l)
				copy(cur, block[:l])
			}
			if q, ok := at[string(cur)]; ok {
				pos = q + proto.HWRNGBlock
			}
		}
		prev = cur
	}
	// 2. A read that ended in the middle of a block leaves its second half
	// in the driver: take exactly that half, so reads are whole blocks.
	if pos%proto.HWRNGBlock != 0 {
		half := block[:hwrngHalf]
		n, err := readNow(ctx, dev, half)
		if err != nil {
			return out, err
		}
		out.Consumed += uint64(n)
		at := -1
		if n == hwrngHalf {
			at = findHalf(stream[:r.Start], half, hwrngHalf)
		}
		if at < pos {
			return fail(fmt.Sprintf("the half block after %s is not the stream's (got %d bytes %x)", fmt.Sprintf(hwrngSyncWhere, pos, r.Start), n, half[:n]))
		}
		pos = at + hwrngHalf
	}
	// 3. Whole blocks up to Start; the kernel may take some in between.
	for uint64(pos) < r.Start {
		if err := read(); err != nil {
			return out, err
		}
		at := findBlock(stream[:r.Start], block)
		if at < pos {
			return fail(fmt.Sprintf("a block after %s is not the stream's below the start: %x", fmt.Sprintf(hwrngSyncWhere, pos, r.Start), block))
		}
		pos = at + proto.HWRNGBlock
	}
	// 4. The block at Start goes into the core's buffer; its tail tells it
	// is the right one (the kernel's thread could have taken it just now).
	tail := block[:hwrngCheck]
	if err := dev.ReadBlocking(tail); err != nil {
		return out, fmt.Errorf("hwrng_sync: reading %s: %w", hwrngPath, err)
	}
	out.Consumed += uint64(len(tail))
	if !bytes.Equal(tail, stream[r.Start+proto.HWRNGPreloaded:]) {
		return fail(fmt.Sprintf("the block at %d went elsewhere (read %x)", r.Start, tail))
	}
	return out, nil
}

// findHalf is the offset of half in stream, a multiple of hwrngHalf that
// is congruent to phase modulo a block (any multiple when phase < 0), or -1.
func findHalf(stream, half []byte, phase int) int {
	for at := 0; at+hwrngHalf <= len(stream); at += hwrngHalf {
		if phase >= 0 && at%proto.HWRNGBlock != phase {
			continue
		}
		if bytes.Equal(stream[at:at+hwrngHalf], half) {
			return at
		}
	}
	return -1
}

// halfIndex maps every 64 bytes of stream that start at a multiple of
// hwrngHalf (what one fetch of the core can be) to its offset.
func halfIndex(stream []byte) map[string]int {
	at := make(map[string]int, len(stream)/hwrngHalf)
	for q := 0; q+proto.HWRNGBlock <= len(stream); q += hwrngHalf {
		if _, dup := at[string(stream[q:q+proto.HWRNGBlock])]; !dup {
			at[string(stream[q:q+proto.HWRNGBlock])] = q
		}
	}
	return at
}

// findBlock is the block-aligned offset of block in stream, or -1.
func findBlock(stream, block []byte) int {
	for at := 0; at+proto.HWRNGBlock <= len(stream); at += proto.HWRNGBlock {
		if bytes.Equal(stream[at:at+proto.HWRNGBlock], block) {
			return at
		}
	}
	return -1
}

// readNow retries a non-blocking read until the driver has bytes.
func readNow(ctx context.Context, dev hwrngDevice, p []byte) (int, error) {
	deadline := time.Now().Add(hwrngSyncNowWait)
	for {
		n, err := dev.ReadNow(p)
		if err != nil {
			return 0, fmt.Errorf("hwrng_sync: reading %s: %w", hwrngPath, err)
		}
		if n > 0 || time.Now().After(deadline) {
			return n, nil
		}
		if !sleepCtx(ctx, hwrngSyncPoll) {
			return 0, ctx.Err()
		}
	}
}

// hwrngFile is the real device: one blocking and one non-blocking open
// (O_NONBLOCK belongs to the open file, and the core honours it per read).
// The non-blocking one stays a raw descriptor: os.File.Fd would clear
// O_NONBLOCK.
type hwrngFile struct {
	blocking *os.File
	now      int
}

func openHWRNG() (*hwrngFile, error) {
	b, err := os.OpenFile(hwrngPath, os.O_RDONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("hwrng_sync: %w", err)
	}
	fd, err := unix.Open(hwrngPath, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("hwrng_sync: %s: %w", hwrngPath, err)
	}
	return &hwrngFile{blocking: b, now: fd}, nil
}

func (f *hwrngFile) ReadBlocking(p []byte) error {
	_, err := io.ReadFull(f.blocking, p)
	return err
}

func (f *hwrngFile) ReadNow(p []byte) (int, error) {
	for {
		n, err := unix.Read(f.now, p)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EAGAIN):
			return 0, nil
		case err != nil:
			return 0, err
		}
		return n, nil
	}
}

func (f *hwrngFile) Close() {
	f.blocking.Close()
	unix.Close(f.now)
}
