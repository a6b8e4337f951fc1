package proto

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
)

// RNGStream is the byte stream a seeded VM's virtio-rng device carries once
// the guest has booted (10-lua-api.md §5.2 rng_seed). The host serves it and
// the agent recognises it (OpHWRNGSync), so both derive it here.
func RNGStream(seed uint64) io.Reader { return seedStream(seed, "provium-virtio-rng-stream") }

// RNGBootStream is what the device carries while the guest boots, before
// the host restarts RNGStream: derived from the seed too, and distinct from
// RNGStream so the agent can tell where the latter begins.
func RNGBootStream(seed uint64) io.Reader { return seedStream(seed, "provium-virtio-rng-boot") }

// seedStream is ChaCha8 keyed by the seed and a label.
func seedStream(seed uint64, label string) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	copy(key[8:], label)
	return rand.NewChaCha8(key)
}

// OpHWRNGSync (HWRNGSyncReq → HWRNGSyncResp) lines /dev/hwrng up with the
// seed's stream: the host has just restarted RNGStream(Seed) on the
// virtio-rng device; the agent reads /dev/hwrng until its reads reach
// stream offset Start and then leaves the 64-byte block at Start in the
// hwrng core's read buffer, where the kernel's own hwrng thread cannot take
// it. The first HWRNGPreloaded bytes read from /dev/hwrng afterwards are
// then the same in every VM of that seed.
const OpHWRNGSync = "hwrng_sync"

// HWRNGBlock is the unit in which the guest's virtio-rng driver fetches
// bytes (its buffer, one cache line of the x86 kernel).
const HWRNGBlock = 64

// HWRNGPreloaded is how many bytes of the block at Start stay in the hwrng
// core's buffer for the guest's readers: the agent reads the block's last
// HWRNGBlock-HWRNGPreloaded bytes itself to check it is the right block.
const HWRNGPreloaded = 56

// HWRNGSyncReq asks for the sync; Start is a multiple of HWRNGBlock.
type HWRNGSyncReq struct {
	Seed  Seed   `msgpack:"seed"`
	Start uint64 `msgpack:"start"`
}

// HWRNGSyncResp reports how many bytes the agent read from /dev/hwrng
// (boot-time bytes included) to get there.
type HWRNGSyncResp struct {
	Consumed uint64 `msgpack:"consumed"`
}
