package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/provium/provium/internal/accel"
	"github.com/provium/provium/internal/config"
)

// fakeQEMU puts a qemu-system-x86_64 shell script with body into a new
// directory and returns that directory (to be used as PATH).
func fakeQEMU(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\n" + body + "\n"
	if err := os.WriteFile(filepath.Join(dir, "qemu-system-x86_64"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

const qemu72 = `echo "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"`

func TestPreflightQEMUTexts(t *testing.T) {
	tree := map[string]string{"a.test.lua": `test("a", function(t) end)`}
	cases := []struct {
		name string
		path func(t *testing.T) string
		want func(path string) string // whole stderr
	}{
		{
			name: "missing",
			path: func(t *testing.T) string { return t.TempDir() },
			want: func(string) string {
				return "provium: qemu: `qemu-system-x86_64` not found on PATH\n  → apt-get install qemu-system-x86\n"
			},
		},
		{
			name: "old",
			path: func(t *testing.T) string {
				return fakeQEMU(t, `echo "QEMU emulator version 6.2.0 (Debian 1:6.2+dfsg-2ubuntu6)"`)
			},
			want: func(string) string {
				return "provium: qemu: version 6.2.0 is older than 7.2\n  → " + fixUpgradeQEMU + "\n"
			},
		},
		{
			name: "fails",
			path: func(t *testing.T) string { return fakeQEMU(t, "echo 'cannot load libfoo' >&2\nexit 3") },
			want: func(dir string) string {
				return "provium: qemu: " + filepath.Join(dir, "qemu-system-x86_64") +
					" --version failed: exit status 3: cannot load libfoo\n  → " + fixReinstallQEMU + "\n"
			},
		},
		{
			name: "garbage",
			path: func(t *testing.T) string { return fakeQEMU(t, "echo hello") },
			want: func(dir string) string {
				return "provium: qemu: " + filepath.Join(dir, "qemu-system-x86_64") +
					" --version failed: unrecognised output \"hello\"\n  → " + fixReinstallQEMU + "\n"
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.path(t)
			in := newInvocation(t, writeTree(t, tree))
			in.vars["PATH"] = dir
			code, out, errOut := in.exec()
			if code != ExitUsage || out != "" || errOut != c.want(dir) {
				t.Errorf("exit %d, stdout %q, stderr\n%q\nwant\n%q", code, out, errOut, c.want(dir))
			}
			// --no-preflight skips every check: the file runs.
			code, out, errOut = in.exec("--no-preflight")
			if code != ExitOK || !strings.Contains(out, "1 passed") {
				t.Errorf("--no-preflight: exit %d, stdout %q, stderr %q", code, out, errOut)
			}
		})
	}
}

func TestPreflightQEMUAccepted(t *testing.T) {
	for _, v := range []string{qemu72, `echo "QEMU emulator version 8.0.0"`, `echo "QEMU emulator version 10.1"`} {
		in := newInvocation(t, writeTree(t, map[string]string{"a.test.lua": `test("a", function(t) end)`}))
		in.vars["PATH"] = fakeQEMU(t, v)
		if code, out, errOut := in.exec("--accel", "tcg"); code != ExitOK || !strings.Contains(out, "1 passed") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", v, code, out, errOut)
		}
	}
}

func TestPreflightQEMUSilent(t *testing.T) {
	dir := fakeQEMU(t, "sleep 30")
	_, err := checkQEMU(context.Background(), dir, 100*time.Millisecond)
	want := "qemu: " + filepath.Join(dir, "qemu-system-x86_64") + " --version failed: no answer within 100ms"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
	if pe, ok := err.(*preflightError); !ok || pe.fix != fixReinstallQEMU {
		t.Fatalf("err = %#v", err)
	}
}

func TestPreflightAccel(t *testing.T) {
	cfg, err := config.LoadDefaultEnv(t.TempDir(), func(k string) (string, bool) {
		switch k {
		case "XDG_RUNTIME_DIR":
			return t.TempDir(), true
		case "PROVIUM_CACHE_DIR":
			return filepath.Join(t.TempDir(), "cache"), true
		}
		return "", false
	})
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "kvm")
	in := preflightInput{
		path:        fakeQEMU(t, qemu72),
		probe:       accel.Options{Device: missing},
		accel:       "kvm",
		accelSource: config.AccelSourceFlag,
	}
	err = preflight(context.Background(), cfg, in)
	pe, ok := err.(*preflightError)
	want := "accel: KVM requested (--accel kvm) but unusable: " + missing + " does not exist"
	if !ok || pe.problem != want || !strings.HasPrefix(pe.fix, "use `--accel auto` or `--accel tcg`, or: ") {
		t.Fatalf("err = %#v, want %q", err, want)
	}
	for src, text := range map[string]string{
		config.AccelSourceEnv:    "PROVIUM_ACCEL=kvm",
		config.AccelSourceConfig: `[provium] accel = "kvm"`,
	} {
		in.accelSource = src
		if err := preflight(context.Background(), cfg, in); err == nil || !strings.Contains(err.Error(), "("+text+")") {
			t.Errorf("source %s: err = %v", src, err)
		}
	}
	// Only an explicit kvm request probes: auto and tcg pass here.
	for _, a := range []string{"auto", "tcg"} {
		in.accel = a
		if err := preflight(context.Background(), cfg, in); err != nil {
			t.Errorf("accel %s: %v", a, err)
		}
	}
}

// The provium binary must turn into the KVM probe child before anything
// else: probing it with a fake device gets the child's own verdict (an
// ioctl error on /dev/null), not "the probe could not run".
func TestBinaryIsProbeChild(t *testing.T) {
	bin := buildBinary(t)
	cpuinfo := filepath.Join(t.TempDir(), "cpuinfo")
	if err := os.WriteFile(cpuinfo, []byte("processor\t: 0\nflags\t\t: fpu vmx\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := accel.Probe(context.Background(), accel.Options{Executable: bin, Device: "/dev/null", CPUInfo: cpuinfo, Timeout: 10 * time.Second})
	if r.Usable || r.Reason.Code != accel.ReasonIoctl || !strings.Contains(r.Reason.Text, "KVM_GET_API_VERSION") {
		t.Fatalf("probe through the binary: %+v", r)
	}
}

// TestPreflightBeforeBootingSubcommands: repl and fixture build|rebuild run
// the preflight too (20-cli-config.md §5), so a missing QEMU or an
// unwritable cache directory is the preflight text with its fix, not a
// raw boot error; --no-preflight skips it.
func TestPreflightBeforeBootingSubcommands(t *testing.T) {
	tree := map[string]string{
		"provium.toml":         "[provium]\nroots = [\"tests\"]\n\n[profiles.linux]\nkernel = \"/nonexistent/vmlinux\"\ncmdline = \"console=ttyS0\"\n",
		"tests/fx.fixture.lua": `return provium:vm("a", "linux"):boot():snapshot()`,
		"tests/none.test.lua":  `test("a", function(t) end)`,
	}
	commands := [][]string{{"repl", "linux"}, {"fixture", "build", "fx"}, {"fixture", "rebuild", "fx"}}
	for _, args := range commands {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			in := newInvocation(t, writeTree(t, tree))
			in.vars["PATH"] = t.TempDir()
			want := "provium: qemu: `qemu-system-x86_64` not found on PATH\n  → apt-get install qemu-system-x86\n"
			if code, out, errOut := in.exec(args...); code != ExitUsage || out != "" || errOut != want {
				t.Errorf("no QEMU: exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			// --no-preflight: the command goes on and fails at the boot.
			code, _, errOut := in.exec(append([]string{"--no-preflight"}, args...)...)
			if code != ExitUsage || strings.Contains(errOut, "→") {
				t.Errorf("--no-preflight: exit %d, stderr %q", code, errOut)
			}

			in = newInvocation(t, writeTree(t, tree))
			in.vars["PROVIUM_CACHE_DIR"] = "/proc/nope"
			code, _, errOut = in.exec(args...)
			if code != ExitUsage || !strings.HasPrefix(errOut, "provium: cache: `/proc/nope` is not writable: ") ||
				!strings.HasSuffix(errOut, "\n  → set `[provium] cache_dir` or PROVIUM_CACHE_DIR to a writable directory\n") {
				t.Errorf("unwritable cache: exit %d, stderr %q", code, errOut)
			}
		})
	}
}
