package vmm

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// An ELF with a Xen PHYS32_ENTRY note, built by the C compiler the Lua
// binding needs anyway.
const pvhAsm = `
	.section .note.Xen, "a", @note
	.balign 4
	.long 4, 4, 18
	.asciz "Xen"
	.long 0x1000000
	.text
	.globl _start
_start:
	hlt
`

func buildELF(t *testing.T, asm string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed: cannot build a test ELF")
	}
	dir := t.TempDir()
	src, out := filepath.Join(dir, "a.S"), filepath.Join(dir, "a.elf")
	if err := os.WriteFile(src, []byte(asm), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(gcc, "-nostdlib", "-static", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	return out
}

func TestHasPVHNote(t *testing.T) {
	withNote := buildELF(t, pvhAsm)
	without := buildELF(t, ".text\n.globl _start\n_start:\n\thlt\n")
	text := filepath.Join(t.TempDir(), "bzImage")
	os.WriteFile(text, []byte("MZ not an elf at all"), 0o644)

	for path, want := range map[string]bool{withNote: true, without: false, text: false} {
		got, err := HasPVHNote(path)
		if err != nil || got != want {
			t.Errorf("HasPVHNote(%s) = %v, %v; want %v", filepath.Base(path), got, err, want)
		}
	}
	if _, err := HasPVHNote(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

// The Debian kernel, when a test kernel is around: the ELF has the note, the
// bzImage does not.
func TestHasPVHNoteDebianKernel(t *testing.T) {
	k := testKernel(t)
	got, err := HasPVHNote(k.path)
	if err != nil {
		t.Fatal(err)
	}
	if got != k.elf {
		t.Errorf("HasPVHNote(%s) = %v, want %v", k.path, got, k.elf)
	}
}
