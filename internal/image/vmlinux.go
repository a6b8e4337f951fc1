package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"

	"github.com/klauspost/compress/zstd"
)

// Offsets in the x86 boot protocol's setup header (Documentation/arch/x86/boot.rst).
const (
	offSetupSects    = 0x1f1
	offHeaderMagic   = 0x202
	offVersion       = 0x206
	offPayloadOffset = 0x248
	offPayloadLength = 0x24c
	minSetupLen      = 0x250
	// payload_offset/length exist since boot protocol 2.08.
	minPayloadProtocol = 0x0208
)

// xenNotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit PVH entry point
// QEMU looks for to boot an ELF kernel directly.
const xenNotePhys32Entry = 18

// ExtractVmlinux returns the uncompressed ELF kernel embedded in a bzImage.
// The compressed payload is located through the setup header; gzip and zstd
// are decoded in-process, xz (what Debian 12 uses) with the system xz tool,
// since Go's standard library has no xz decoder and xz-utils is part of
// every Debian system.
func ExtractVmlinux(ctx context.Context, bz []byte) ([]byte, error) {
	if len(bz) < minSetupLen || string(bz[offHeaderMagic:offHeaderMagic+4]) != "HdrS" {
		return nil, errors.New("not a bzImage: no HdrS setup header")
	}
	if v := binary.LittleEndian.Uint16(bz[offVersion:]); v < minPayloadProtocol {
		return nil, fmt.Errorf("bzImage boot protocol %#x predates payload_offset (2.08)", v)
	}
	setupSects := int(bz[offSetupSects])
	if setupSects == 0 {
		setupSects = 4 // boot protocol: 0 means 4
	}
	pmStart := (setupSects + 1) * 512
	off := pmStart + int(binary.LittleEndian.Uint32(bz[offPayloadOffset:]))
	n := int(binary.LittleEndian.Uint32(bz[offPayloadLength:]))
	if n < 4 || off < pmStart || off+n > len(bz) {
		return nil, fmt.Errorf("bzImage payload [%d, +%d) outside the %d-byte file", off, n, len(bz))
	}
	payload := bz[off : off+n]
	// The kernel build appends the uncompressed size (le32) to every payload.
	wantSize := int(binary.LittleEndian.Uint32(payload[n-4:]))
	stream := payload[:n-4]

	var (
		out []byte
		err error
	)
	switch {
	case bytes.HasPrefix(stream, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		out, err = unxz(ctx, stream)
	case bytes.HasPrefix(stream, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		out, err = unzstd(stream)
	case bytes.HasPrefix(stream, []byte{0x1f, 0x8b}):
		out, err = gunzip(stream)
	default:
		return nil, fmt.Errorf("bzImage payload compression not supported (magic % x); need gzip, xz or zstd", stream[:min(6, len(stream))])
	}
	if err != nil {
		return nil, fmt.Errorf("decompress bzImage payload: %w", err)
	}
	if len(out) != wantSize {
		return nil, fmt.Errorf("decompressed kernel is %d bytes, the bzImage says %d", len(out), wantSize)
	}
	return out, nil
}

func unxz(ctx context.Context, stream []byte) ([]byte, error) {
	path, err := exec.LookPath("xz")
	if err != nil {
		return nil, errors.New("the kernel is xz-compressed and the xz tool is missing (install xz-utils)")
	}
	// --single-stream ignores anything after the first stream, whatever
	// padding the build left.
	cmd := exec.CommandContext(ctx, path, "--decompress", "--stdout", "--single-stream")
	cmd.Stdin = bytes.NewReader(stream)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("xz: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

func unzstd(stream []byte) ([]byte, error) {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.DecodeAll(stream, nil)
}

func gunzip(stream []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(stream))
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	return io.ReadAll(zr)
}

// CheckPVH verifies that kernel is a 64-bit x86 ELF with a Xen
// PHYS32_ENTRY note, i.e. one QEMU can boot directly through PVH.
func CheckPVH(kernel []byte) error {
	f, err := elf.NewFile(bytes.NewReader(kernel))
	if err != nil {
		return fmt.Errorf("kernel is not an ELF file: %w", err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("kernel ELF is %v/%v, want ELFCLASS64/EM_X86_64", f.Class, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		data, err := io.ReadAll(p.Open())
		if err != nil {
			return fmt.Errorf("read ELF note segment: %w", err)
		}
		if hasNote(data, f.ByteOrder, "Xen", xenNotePhys32Entry) {
			return nil
		}
	}
	return errors.New("kernel ELF has no PVH entry note (Xen, XEN_ELFNOTE_PHYS32_ENTRY); it needs CONFIG_PVH=y")
}

// hasNote scans an ELF note segment for a note with the given owner and type.
func hasNote(data []byte, bo binary.ByteOrder, owner string, typ uint32) bool {
	align4 := func(n uint32) uint32 { return (n + 3) &^ 3 }
	for len(data) >= 12 {
		nameSz, descSz, t := bo.Uint32(data), bo.Uint32(data[4:]), bo.Uint32(data[8:])
		data = data[12:]
		if uint64(align4(nameSz))+uint64(align4(descSz)) > uint64(len(data)) {
			return false
		}
		name := string(bytes.TrimRight(data[:nameSz], "\x00"))
		if name == owner && t == typ {
			return true
		}
		data = data[align4(nameSz)+align4(descSz):]
	}
	return false
}
