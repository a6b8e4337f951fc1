package netsim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrame is the largest frame a port accepts (QEMU's stream netdev never
// sends more than 64 KiB, the virtio-net maximum with offloads).
const MaxFrame = 65536

// minFrame is an Ethernet header: anything shorter is malformed.
const minFrame = 14

// errOversize is a length prefix above MaxFrame. The stream cannot be
// resynchronised after it, so the connection ends.
var errOversize = errors.New("netsim: frame larger than 64 KiB")

// readFrame reads one length-prefixed frame into a new slice.
func readFrame(r io.Reader, hdr []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n > MaxFrame {
		return nil, fmt.Errorf("%w (%d bytes)", errOversize, n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// appendFrame appends the length-prefixed encoding of f to dst.
func appendFrame(dst, f []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(f)))
	return append(dst, f...)
}

// WriteFrame writes one length-prefixed frame (for peers and tests).
func WriteFrame(w io.Writer, f []byte) error {
	_, err := w.Write(appendFrame(make([]byte, 0, 4+len(f)), f))
	return err
}

// ReadFrame reads one length-prefixed frame (for peers and tests).
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	return readFrame(r, hdr[:])
}

// MAC is a 6-byte Ethernet address.
type MAC [6]byte

func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// ParseMAC reads "52:54:00:01:02:03".
func ParseMAC(s string) (MAC, error) {
	var m MAC
	if _, err := fmt.Sscanf(s, "%02x:%02x:%02x:%02x:%02x:%02x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]); err != nil || len(s) != 17 {
		return MAC{}, fmt.Errorf("netsim: bad MAC %q", s)
	}
	return m, nil
}

// group reports a broadcast or multicast address (the I/G bit).
func (m MAC) group() bool { return m[0]&1 == 1 }

func dstMAC(f []byte) (m MAC) { copy(m[:], f[0:6]); return }
func srcMAC(f []byte) (m MAC) { copy(m[:], f[6:12]); return }
