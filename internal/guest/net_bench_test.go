package guest

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/guesttest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/proto"
)

// TestNetworkBenchmark is B6 (50-performance.md): guest-to-guest ping RTT
// and TCP throughput through a bridge's switch against two QEMUs joined
// directly by a stream netdev (one listens, the other connects), measured
// in the same run, rounds alternating. Report only: `make bench` runs it.
func TestNetworkBenchmark(t *testing.T) {
	if os.Getenv("PROVIUM_BENCH_NET") == "" {
		t.Skip("set PROVIUM_BENCH_NET=1 to measure the network (B6)")
	}
	cfg := guesttest.Config(t)
	b := newBackend(t, cfg)
	ctx := context.Background()
	mem := uint64(256 << 20)

	// Through the switch: a lab with a bridge, as a test file has it.
	root := lab.NewRoot(lab.Env{Profiles: lab.StaticProfiles{"linux"}, GuestOS: cfg.NamedGuestOS, Backend: b.ForFile("b6.test.lua")})
	defer root.Scope().Close(ctx)
	sa, _ := root.NewVM("sa", "linux", lab.BootOpts{Memory: &mem})
	sb, _ := root.NewVM("sb", "linux", lab.BootOpts{Memory: &mem})
	lan, err := root.Bridge("lan")
	if err != nil {
		t.Fatal(err)
	}
	if err := lan.Attach(ctx, sa, sb); err != nil {
		t.Fatal(err)
	}
	if err := root.BootAll(ctx); err != nil {
		t.Fatal(err)
	}
	sbIP, _ := lan.NICs()[1].IP()

	// Directly: da's QEMU listens on its NIC socket, db's connects to it.
	fb := b.ForFile("b6-direct.test.lua")
	var daSock string
	da, err := fb.Start(ctx, lab.BootSpec{Name: "da", Path: "da", Profile: "linux", Opts: lab.BootOpts{Memory: &mem},
		NICs: []lab.NICSpec{{ID: "net0", MAC: "02:b6:00:00:00:02", Bridge: "direct", Server: true,
			Listen: func(p string) error { daSock = p; return nil }}}})
	if err != nil {
		t.Fatal(err)
	}
	defer da.Stop(ctx)
	db, err := fb.Start(ctx, lab.BootSpec{Name: "db", Path: "db", Profile: "linux", Opts: lab.BootOpts{Memory: &mem},
		NICs: []lab.NICSpec{{ID: "net0", MAC: "02:b6:00:00:00:03", Bridge: "direct",
			Listen: func(p string) error { return os.Symlink(daSock, p) }}}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop(ctx)
	for _, x := range []struct {
		m    lab.Machine
		mac  string
		addr string
	}{{da, "02:b6:00:00:00:02", "10.99.0.2/24"}, {db, "02:b6:00:00:00:03", "10.99.0.3/24"}} {
		if _, err := x.m.(*Machine).ConfigureNet(ctx, lab.NetConfig{Ifaces: []lab.NetIface{{MAC: x.mac, Address: x.addr}}}); err != nil {
			t.Fatal(err)
		}
	}

	agent := func(m lab.Machine) *agentclient.Client {
		ag, err := m.(*Machine).Agent()
		if err != nil {
			t.Fatal(err)
		}
		return ag
	}
	paths := []struct {
		name     string
		from, to *agentclient.Client
		ip       string
	}{
		{"switch", agent(sa.Machine()), agent(sb.Machine()), sbIP},
		{"direct", agent(da), agent(db), "10.99.0.3"},
	}
	const rounds = 3
	rtt := map[string][]float64{}
	tput := map[string][]float64{}
	for r := range rounds {
		for i := range paths {
			p := paths[(i+r)%len(paths)] // alternate which path goes first
			rtt[p.name] = append(rtt[p.name], minRTT(t, ctx, p.from, p.ip))
			tput[p.name] = append(tput[p.name], tcpMiBps(t, ctx, p.from, p.to, p.ip))
		}
	}
	med := func(xs []float64) float64 {
		s := slices.Sorted(slices.Values(xs))
		return s[len(s)/2]
	}
	t.Logf("B6 ping RTT (min of 30, ms): switch %v, direct %v; medians %.3f / %.3f, ratio %.2f (target <= 1.2)",
		rtt["switch"], rtt["direct"], med(rtt["switch"]), med(rtt["direct"]), med(rtt["switch"])/med(rtt["direct"]))
	t.Logf("B6 TCP throughput (MiB/s, 256 MiB): switch %v, direct %v; medians %.1f / %.1f, ratio %.2f (target >= 0.8)",
		tput["switch"], tput["direct"], med(tput["switch"]), med(tput["direct"]), med(tput["switch"])/med(tput["direct"]))
}

var rttMin = regexp.MustCompile(`min/avg/max = ([\d.]+)/`)

func minRTT(t *testing.T, ctx context.Context, from *agentclient.Client, ip string) float64 {
	t.Helper()
	res, err := from.Exec(ctx, proto.ExecReq{Cmd: "ping -c 30 -i 0.05 -q " + ip, Shell: true})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("ping: %v %s %s", err, res.Stdout, res.Stderr)
	}
	m := rttMin.FindSubmatch(res.Stdout)
	if m == nil {
		t.Fatalf("ping output: %s", res.Stdout)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// tcpMiBps sends 256 MiB from -> to over one TCP connection and times it
// from the sender's start to the receiver's end.
func tcpMiBps(t *testing.T, ctx context.Context, from, to *agentclient.Client, ip string) float64 {
	t.Helper()
	const count = 4096 // × 64 KiB
	recv, err := to.Start(ctx, proto.ExecReq{Cmd: "nc -l -p 5001 | wc -c", Shell: true})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // let nc listen
	t0 := time.Now()
	res, err := from.Exec(ctx, proto.ExecReq{Cmd: fmt.Sprintf("dd if=/dev/zero bs=64k count=%d 2>/dev/null | nc %s 5001", count, ip), Shell: true})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("send: %v %s %s", err, res.Stdout, res.Stderr)
	}
	out, err := recv.Wait(ctx, 5*time.Minute)
	took := time.Since(t0)
	if err != nil || string(out.Stdout) != fmt.Sprintf("%d\n", count*64*1024) {
		t.Fatalf("receive: %v %q", err, out.Stdout)
	}
	return float64(count*64*1024) / (1 << 20) / took.Seconds()
}
