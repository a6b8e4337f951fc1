package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// fakeBzImage wraps payload (already compressed, size trailer appended by
// the caller) in a minimal setup header the way the kernel build lays it out.
func fakeBzImage(payload []byte) []byte {
	const setupSects = 1
	bz := make([]byte, (setupSects+1)*512)
	bz[offSetupSects] = setupSects
	copy(bz[offHeaderMagic:], "HdrS")
	binary.LittleEndian.PutUint16(bz[offVersion:], 0x020f)
	binary.LittleEndian.PutUint32(bz[offPayloadOffset:], 16) // after some "decompressor" bytes
	binary.LittleEndian.PutUint32(bz[offPayloadLength:], uint32(len(payload)))
	bz = append(bz, make([]byte, 16)...)
	bz = append(bz, payload...)
	return append(bz, []byte("trailing setup data")...)
}

func gzipWithSize(t *testing.T, plain []byte, size uint32) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(plain)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return binary.LittleEndian.AppendUint32(buf.Bytes(), size)
}

func TestExtractVmlinuxGzipPayload(t *testing.T) {
	plain := bytes.Repeat([]byte("kernel!"), 1000)
	got, err := ExtractVmlinux(context.Background(), fakeBzImage(gzipWithSize(t, plain, uint32(len(plain)))))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, plain) {
		t.Fatal("extracted payload differs")
	}

	_, err = ExtractVmlinux(context.Background(), fakeBzImage(gzipWithSize(t, plain, 5)))
	if err == nil || !strings.Contains(err.Error(), "the bzImage says 5") {
		t.Fatalf("size mismatch err = %v", err)
	}
	_, err = ExtractVmlinux(context.Background(), []byte("not a kernel at all, too short"))
	if err == nil || !strings.Contains(err.Error(), "not a bzImage") {
		t.Fatalf("garbage err = %v", err)
	}
	_, err = ExtractVmlinux(context.Background(), fakeBzImage([]byte("LZ4?????")))
	if err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("unknown compression err = %v", err)
	}
}

func TestCheckPVHRejectsNonELF(t *testing.T) {
	if err := CheckPVH([]byte("plain bytes")); err == nil || !strings.Contains(err.Error(), "not an ELF") {
		t.Fatalf("err = %v", err)
	}
}

func TestHasNote(t *testing.T) {
	note := func(name string, typ uint32, desc []byte) []byte {
		var b []byte
		b = binary.LittleEndian.AppendUint32(b, uint32(len(name)+1))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
		b = binary.LittleEndian.AppendUint32(b, typ)
		b = append(b, name...)
		b = append(b, 0)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		b = append(b, desc...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	seg := append(note("GNU", 3, []byte{1, 2, 3, 4, 5}), note("Xen", 18, []byte{0, 0, 0, 1})...)
	if !hasNote(seg, binary.LittleEndian, "Xen", 18) {
		t.Fatal("PVH note not found after a GNU note")
	}
	if hasNote(note("Xen", 17, []byte{0, 0, 0, 0}), binary.LittleEndian, "Xen", 18) {
		t.Fatal("wrong note type accepted")
	}
	if hasNote(seg[:20], binary.LittleEndian, "Xen", 18) {
		t.Fatal("truncated segment accepted")
	}
}

func TestProfileSnippetIsTOML(t *testing.T) {
	snippet := profileSnippet(`/data/we"ird\dir/vmlinux`, "/data/initrd.cpio.gz")
	if !strings.HasPrefix(snippet, "[profiles.linux]\n") {
		t.Fatalf("snippet starts %q", snippet)
	}
	var cfg struct {
		Profiles map[string]struct {
			Kernel, Initrd, Cmdline string
			GuestOS                 string `toml:"guest_os"`
		}
	}
	if _, err := toml.Decode(snippet, &cfg); err != nil {
		t.Fatalf("snippet is not TOML: %v\n%s", err, snippet)
	}
	p := cfg.Profiles["linux"]
	if p.Kernel != `/data/we"ird\dir/vmlinux` || p.Initrd != "/data/initrd.cpio.gz" || p.GuestOS != "linux" {
		t.Fatalf("decoded %+v", p)
	}
	if !strings.HasPrefix(p.Cmdline, "console=ttyS0 quiet ") {
		t.Fatalf("cmdline %q", p.Cmdline)
	}
}

func TestFindDebs(t *testing.T) {
	dir := t.TempDir()
	touch := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	touch("linux-image-amd64_6.1.192-3_amd64.deb") // meta package: no kernel inside
	touch("linux-image-6.1.0-57-amd64-dbg_6.1.192-3_amd64.deb")
	if _, err := findDebs(dir); err == nil || !strings.Contains(err.Error(), "no linux-image-<version>-amd64 .deb") {
		t.Fatalf("err = %v", err)
	}
	touch("linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb")
	if _, err := findDebs(dir); err == nil || !strings.Contains(err.Error(), "no busybox-static .deb") {
		t.Fatalf("err = %v", err)
	}
	touch("busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb")
	s, err := findDebs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(s.kernel) != "linux-image-6.1.0-57-amd64_6.1.192-3_amd64.deb" || !strings.HasPrefix(filepath.Base(s.busybox), "busybox-static_") {
		t.Fatalf("picked %+v", s)
	}
	touch("linux-image-6.1.0-58-amd64_6.1.193-1_amd64.deb")
	if _, err := findDebs(dir); err == nil || !strings.Contains(err.Error(), "several linux-image") {
		t.Fatalf("err = %v", err)
	}
}

func TestModName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/drivers/char/hw_random/virtio-rng.ko": "virtio_rng",
		"crc32c-intel": "crc32c_intel",
		"9pnet_virtio": "9pnet_virtio",
	} {
		if got := modName(in); got != want {
			t.Errorf("modName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBuildReusesCompleteImage(t *testing.T) {
	out := t.TempDir()
	for _, name := range []string{VmlinuxName, BzImageName, InitrdName, ProfileName} {
		if err := os.WriteFile(filepath.Join(out, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(out, releaseName), []byte("6.1.0-test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, formatName), []byte(formatVersion+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	// FromDebs points nowhere: a rebuild would fail, reuse must not look at it.
	res, err := Build(context.Background(), Options{Out: out, FromDebs: filepath.Join(out, "missing"), Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Reused || res.KernelRelease != "6.1.0-test" || res.Vmlinux != filepath.Join(out, VmlinuxName) {
		t.Fatalf("result %+v", res)
	}
	if !strings.Contains(progress.String(), "reusing") {
		t.Fatalf("progress %q", progress.String())
	}
	// An image of an older layout is not reused: the rebuild is attempted
	// (and fails here, FromDebs pointing nowhere).
	if err := os.WriteFile(filepath.Join(out, formatName), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Build(context.Background(), Options{Out: out, FromDebs: filepath.Join(out, "missing")}); err == nil {
		t.Fatal("an image of an older format was reused")
	}
	if !strings.Contains(progress.String(), "reusing") {
		t.Fatalf("progress %q", progress.String())
	}
	if _, err := Build(context.Background(), Options{Out: out, Force: true, FromDebs: filepath.Join(out, "missing")}); err == nil {
		t.Fatal("Force reused the image instead of rebuilding")
	}
}

func TestDefaultDirHonoursXDG(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/xdg/cache")
	dir, err := DefaultDir()
	if err != nil || dir != "/xdg/cache/provium/image" {
		t.Fatalf("DefaultDir = %q, %v", dir, err)
	}
}
