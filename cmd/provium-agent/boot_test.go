package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"github.com/provium/provium/internal/guesttest"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provium/provium/internal/agentbin"
	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/image"
	"github.com/provium/provium/internal/initrd"
	"github.com/provium/provium/internal/proto"
)

// guestImage returns the default Linux image (built from Debian packages on
// first use and cached). This test is about the agent, which is always
// rebuilt.
func guestImage(t *testing.T, ctx context.Context) *image.Result {
	t.Helper()
	return guesttest.Image(t)
}

// vm is one QEMU guest running the agent as PID 1.
type vm struct {
	cmd     *exec.Cmd
	agent   string // chardev socket of the agent port
	qmp     string
	exited  chan struct{}
	console *os.File
}

func bootAgentVM(t *testing.T, ctx context.Context, res *image.Result, agentBin string, bi proto.BootInfo, extra ...initrd.File) *vm {
	t.Helper()
	return bootVM(t, ctx, res, agentBin, bi, initrd.AgentPath, extra...)
}

// bootVM boots like bootAgentVM with rdinit as the guest's first process.
func bootVM(t *testing.T, ctx context.Context, res *image.Result, agentBin string, bi proto.BootInfo, rdinit string, extra ...initrd.File) *vm {
	t.Helper()
	bin, err := os.ReadFile(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	bootJSON, err := json.Marshal(bi)
	if err != nil {
		t.Fatal(err)
	}
	worker, err := guest.WorkerFile(ctx, &agentbin.Locator{})
	if err != nil {
		t.Fatal(err)
	}
	overlay, err := initrd.Overlay(bin, bootJSON, append([]initrd.File{worker}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	seg, err := overlay.Segment()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	base, err := os.ReadFile(res.Initrd)
	if err != nil {
		t.Fatal(err)
	}
	merged := filepath.Join(dir, "initrd.img")
	if err := os.WriteFile(merged, append(base, seg...), 0o644); err != nil {
		t.Fatal(err)
	}
	v := &vm{agent: filepath.Join(dir, "agent.sock"), qmp: filepath.Join(dir, "qmp.sock"), exited: make(chan struct{})}
	if v.console, err = os.Create(filepath.Join(dir, "console.log")); err != nil {
		t.Fatal(err)
	}
	v.cmd = exec.Command("qemu-system-x86_64",
		"-M", "q35", "-accel", "tcg", "-cpu", "max", "-m", "256",
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-serial", "stdio",
		"-kernel", res.Vmlinux, "-initrd", merged,
		"-append", image.Cmdline+" rdinit="+rdinit,
		"-device", "virtio-serial-pci,id=vser",
		"-chardev", "socket,id=agentch,path="+v.agent+",server=on,wait=off",
		"-device", "virtserialport,bus=vser.0,chardev=agentch,name=org.provium.agent.0",
		"-qmp", "unix:"+v.qmp+",server=on,wait=off")
	v.cmd.Stdout = v.console
	v.cmd.Stderr = v.console
	// QEMU never outlives the test, even when the test process dies.
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := v.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { v.cmd.Wait(); close(v.exited) }()
	t.Cleanup(func() {
		v.cmd.Process.Kill()
		<-v.exited
		if t.Failed() {
			b, _ := os.ReadFile(v.console.Name())
			t.Logf("guest console:\n%s", b)
		}
		v.console.Close()
	})
	return v
}

func dialUnix(t *testing.T, ctx context.Context, path string) net.Conn {
	t.Helper()
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			return c
		}
		select {
		case <-ctx.Done():
			t.Fatalf("connect %s: %v", path, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (v *vm) connect(t *testing.T, ctx context.Context) *agentclient.Client {
	t.Helper()
	c, err := agentclient.Dial(ctx, dialUnix(t, ctx, v.agent))
	if err != nil {
		t.Fatalf("agent hello: %v", err)
	}
	return c
}

// powerButton presses the ACPI power button through QMP.
func (v *vm) powerButton(t *testing.T, ctx context.Context) {
	t.Helper()
	conn := dialUnix(t, ctx, v.qmp)
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := r.ReadString('\n'); err != nil { // greeting
		t.Fatal(err)
	}
	for _, cmd := range []string{`{"execute":"qmp_capabilities"}`, `{"execute":"system_powerdown"}`} {
		if _, err := conn.Write([]byte(cmd + "\n")); err != nil {
			t.Fatal(err)
		}
		// Skip asynchronous events (POWERDOWN …) until the command's reply.
		for {
			line, err := r.ReadString('\n')
			if err != nil || strings.Contains(line, `"error"`) {
				t.Fatalf("qmp %s: %q %v", cmd, line, err)
			}
			if strings.Contains(line, `"return"`) {
				break
			}
		}
	}
}

func sh(t *testing.T, ctx context.Context, c *agentclient.Client, script string) string {
	t.Helper()
	res, err := c.Exec(ctx, proto.ExecReq{Cmd: script, Shell: true})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%s: %+v %v", script, res, err)
	}
	return string(res.Stdout)
}

// TestAgentAsPID1UnderQEMU boots the agent as PID 1 (standalone) and checks
// the init duties and the channel's survival across host reconnects.
func TestAgentAsPID1UnderQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a guest")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res := guestImage(t, ctx)
	agentBin := buildAgent(t)
	const initial = 1600000000
	seed := proto.Seed(1234)
	tm := float64(initial)
	v := bootAgentVM(t, ctx, res, agentBin, proto.BootInfo{VMName: "agentvm", InitialTime: &tm, RNGSeed: &seed})

	c := v.connect(t, ctx)
	if h := c.Hello(); h.Kernel != res.KernelRelease || h.Protocol != proto.ProtocolVersion {
		t.Fatalf("hello %+v, want kernel %s", h, res.KernelRelease)
	}
	if host, err := c.ReadFile(ctx, "/proc/sys/kernel/hostname"); err != nil || string(host) != "agentvm\n" {
		t.Fatalf("hostname %q %v", host, err)
	}
	now, err := strconv.ParseInt(strings.TrimSpace(sh(t, ctx, c, "date +%s")), 10, 64)
	if err != nil || now < initial || now > initial+600 {
		t.Fatalf("guest clock %d, want just after %d (%v)", now, initial, err)
	}
	mounts := sh(t, ctx, c, "cat /proc/mounts")
	for _, want := range []string{"devtmpfs /dev ", "proc /proc ", "sysfs /sys ", "tmpfs /tmp ", "tmpfs /run ", "devpts /dev/pts "} {
		if !strings.Contains(mounts, want) {
			t.Errorf("no %q in /proc/mounts:\n%s", want, mounts)
		}
	}
	if mods, _ := c.ReadFile(ctx, "/proc/modules"); !strings.Contains(string(mods), "virtio_console") {
		t.Errorf("virtio_console not loaded:\n%s", mods)
	}
	// Orphans are reaped by PID 1: a backgrounded child of an exited shell
	// must not stay a zombie.
	sh(t, ctx, c, "(sleep 0.2 &) ; true")
	var zombies string
	for i := 0; i < 50; i++ {
		zombies = sh(t, ctx, c, "grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null || true")
		if zombies == "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if zombies != "" {
		t.Errorf("zombies left: %s", zombies)
	}

	// Bulk data both ways through the real port, unchanged; numbers are
	// logged for 50-performance.md, not asserted.
	blob := make([]byte, 16<<20+7)
	for i := range blob {
		blob[i] = byte(i*7 + i>>13)
	}
	start := time.Now()
	if err := c.WriteFile(ctx, "/tmp/blob", blob); err != nil {
		t.Fatal(err)
	}
	up := time.Since(start)
	start = time.Now()
	back, err := c.ReadFile(ctx, "/tmp/blob")
	if err != nil || !bytes.Equal(back, blob) {
		t.Fatalf("16 MiB round trip through the port differs (len %d) %v", len(back), err)
	}
	t.Logf("host->guest %.0f MiB/s, guest->host %.0f MiB/s", 16/up.Seconds(), 16/time.Since(start).Seconds())
	lat := make([]time.Duration, 200)
	for i := range lat {
		start := time.Now()
		if err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		lat[i] = time.Since(start)
	}
	slices.Sort(lat)
	t.Logf("ping round trip over virtio-serial: median %v, p99 %v", lat[len(lat)/2], lat[len(lat)*99/100])

	// The host goes away and comes back: the agent serves a new session.
	c.Close()
	c = v.connect(t, ctx)
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
	// Detach (what the host does before a snapshot), then a fresh session.
	if err := c.Detach(ctx); err != nil {
		t.Fatalf("detach: %v", err)
	}
	c = v.connect(t, ctx)
	if out := sh(t, ctx, c, "echo again"); out != "again\n" {
		t.Fatalf("after detach: %q", out)
	}
	c.Close()

	// The power button ends in a clean shutdown: QEMU exits by itself.
	v.powerButton(t, ctx)
	select {
	case <-v.exited:
	case <-ctx.Done():
		t.Fatal("guest did not power off after the power button")
	}
	b, _ := os.ReadFile(v.console.Name())
	// Init duties report failures on the console: there must be none (the
	// rng seed, clock, hostname, mounts and module loads all succeeded).
	for _, bad := range []string{"Kernel panic", "boot inputs:", "mounts:", "modules:", "power button:"} {
		if strings.Contains(string(b), bad) {
			t.Fatalf("console reports %q:\n%s", bad, b)
		}
	}
}

// earlyMounts is what a minimal init mounts first.
const earlyMounts = `mkdir -p /proc /sys /dev
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
`

// chainInit is an initrd's own /init: it mounts what it needs and stays up.
const chainInit = "#!/bin/sh\n" + earlyMounts + `echo CHAIN-INIT-RAN > /dev/console
while true; do sleep 1; done
`

// TestAgentChainModeUnderQEMU boots an initrd that has its own /init: the
// agent forks itself off as the server and execs /init as PID 1.
func TestAgentChainModeUnderQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a guest")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res := guestImage(t, ctx)
	agentBin := buildAgent(t)
	v := bootAgentVM(t, ctx, res, agentBin, proto.BootInfo{VMName: "chained"},
		initrd.File{Path: "/init", Content: []byte(chainInit), Mode: 0o755, HasMode: true})
	c := v.connect(t, ctx)
	defer c.Close()
	pid1, err := c.ReadFile(ctx, "/proc/1/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pid1), "/init") || strings.Contains(string(pid1), "provium-agent") {
		t.Fatalf("PID 1 runs %q, want the initrd's /init", pid1)
	}
	if mods, _ := c.ReadFile(ctx, "/proc/modules"); !strings.Contains(string(mods), "virtio_console") {
		t.Errorf("virtio_console not loaded:\n%s", mods)
	}
	// The agent mounted nothing itself: only /init's three mounts exist
	// besides the root.
	mounts := sh(t, ctx, c, "cat /proc/mounts")
	if strings.Contains(mounts, " /tmp ") || strings.Contains(mounts, " /run ") {
		t.Errorf("agent mounted in chain mode:\n%s", mounts)
	}
}

// bootScriptInit boots the default image with script at path as the
// guest's first process (rdinit=) and connects to the agent.
func bootScriptInit(t *testing.T, vmName, path, script string) (context.Context, *agentclient.Client) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a guest")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	res := guestImage(t, ctx)
	v := bootVM(t, ctx, res, buildAgent(t), proto.BootInfo{VMName: vmName}, path,
		initrd.File{Path: path, Content: []byte(script), Mode: 0o755, HasMode: true})
	c := v.connect(t, ctx)
	t.Cleanup(func() { c.Close() })
	return ctx, c
}

// userInit is an image's own init in the style of images that copy the
// agent out of $PROVIUM_OVERLAY: it installs the binary elsewhere and
// starts it in the background with no arguments.
const userInit = "#!/bin/sh\n" + earlyMounts + `mkdir -p /usr/bin
cp /sbin/provium-agent /usr/bin/provium-agent
/usr/bin/provium-agent </dev/null >/dev/console 2>&1 &
echo USER-INIT-RAN > /dev/console
while true; do sleep 1; done
`

// TestAgentWithoutArgumentsUnderQEMU: an agent started by the image's init
// as a plain background process with no arguments serves the port.
func TestAgentWithoutArgumentsUnderQEMU(t *testing.T) {
	ctx, c := bootScriptInit(t, "userinit", "/sbin/userinit", userInit)
	pid1, err := c.ReadFile(ctx, "/proc/1/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pid1), "/sbin/userinit") {
		t.Fatalf("PID 1 runs %q, want the image's own init", pid1)
	}
	self := sh(t, ctx, c, `tr '\0' ' ' </proc/$PPID/cmdline`)
	if self != "/usr/bin/provium-agent " {
		t.Fatalf("the serving agent runs as %q, want the copy started with no arguments", self)
	}
	if out := sh(t, ctx, c, "echo served"); out != "served\n" {
		t.Fatalf("exec through the argument-less agent: %q", out)
	}
}

// handoffInit is an earlier boot stage that leaves files in /run (on its
// own tmpfs) and /tmp (a plain directory) and then execs the agent as PID
// 1, as an init does after switching root.
const handoffInit = `#!/bin/sh
mkdir -p /run /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/stage
echo from-stage > /run/stage/late.ran
echo kept > /tmp/stage.txt
exec /sbin/provium-agent
`

// TestStandaloneKeepsEarlierRunUnderQEMU: the standalone agent mounts its
// own proc and devpts but hides neither /run nor /tmp of the stage before.
func TestStandaloneKeepsEarlierRunUnderQEMU(t *testing.T) {
	ctx, c := bootScriptInit(t, "handoff", "/sbin/handoff", handoffInit)
	if pid1, err := c.ReadFile(ctx, "/proc/1/cmdline"); err != nil || !strings.Contains(string(pid1), "provium-agent") {
		t.Fatalf("PID 1 runs %q (%v), want the agent exec'd by the stage", pid1, err)
	}
	for path, want := range map[string]string{"/run/stage/late.ran": "from-stage\n", "/tmp/stage.txt": "kept\n"} {
		if got, err := c.ReadFile(ctx, path); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
	}
	mounts := sh(t, ctx, c, "cat /proc/mounts")
	if n := strings.Count(mounts, " /run "); n != 1 {
		t.Errorf("%d mounts on /run, want the stage's one:\n%s", n, mounts)
	}
	if strings.Contains(mounts, " /tmp ") {
		t.Errorf("the agent mounted over the stage's /tmp:\n%s", mounts)
	}
	for _, want := range []string{"proc /proc ", "sysfs /sys ", "devtmpfs /dev ", "devpts /dev/pts "} {
		if !strings.Contains(mounts, want) {
			t.Errorf("no %q in /proc/mounts:\n%s", want, mounts)
		}
	}
}
