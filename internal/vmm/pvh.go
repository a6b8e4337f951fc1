package vmm

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// xenElfNotePhys32Entry is XEN_ELFNOTE_PHYS32_ENTRY: the note by which a
// kernel advertises its PVH entry point, which QEMU uses to boot an ELF
// vmlinux directly (no decompression, much faster under TCG).
const xenElfNotePhys32Entry = 18

// HasPVHNote reports whether the file at path is an ELF image with a PVH
// entry note. A file that is not ELF (a bzImage) has none: false, no error.
func HasPVHNote(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("vmm: checking PVH note: %w", err)
	}
	defer f.Close()
	ef, err := elf.NewFile(f)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return false, nil
		}
		return false, fmt.Errorf("vmm: reading ELF %s: %w", path, err)
	}
	defer ef.Close()

	var notes []io.ReaderAt
	for _, p := range ef.Progs {
		if p.Type == elf.PT_NOTE {
			notes = append(notes, p)
		}
	}
	if len(notes) == 0 { // e.g. an object without program headers
		for _, s := range ef.Sections {
			if s.Type == elf.SHT_NOTE {
				notes = append(notes, s)
			}
		}
	}
	for _, n := range notes {
		b, err := readAllAt(n)
		if err != nil {
			return false, fmt.Errorf("vmm: reading notes of %s: %w", path, err)
		}
		if hasXenNote(b, ef.ByteOrder, xenElfNotePhys32Entry) {
			return true, nil
		}
	}
	return false, nil
}

func readAllAt(r io.ReaderAt) ([]byte, error) {
	switch v := r.(type) {
	case *elf.Prog:
		return io.ReadAll(v.Open())
	case *elf.Section:
		return v.Data()
	}
	return nil, fmt.Errorf("unsupported note container %T", r)
}

// hasXenNote walks ELF notes: namesz, descsz, type (4 bytes each), then the
// name and the descriptor, each padded to 4 bytes.
func hasXenNote(b []byte, bo binary.ByteOrder, typ uint32) bool {
	pad := func(n uint32) int { return int((uint64(n) + 3) &^ 3) }
	for len(b) >= 12 {
		namesz, descsz, t := bo.Uint32(b[0:]), bo.Uint32(b[4:]), bo.Uint32(b[8:])
		b = b[12:]
		nl, dl := pad(namesz), pad(descsz)
		if nl < 0 || dl < 0 || nl > len(b) || dl > len(b)-nl {
			return false
		}
		name := bytes.TrimRight(b[:namesz], "\x00")
		if t == typ && string(name) == "Xen" {
			return true
		}
		b = b[nl+dl:]
	}
	return false
}
