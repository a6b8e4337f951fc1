package luaapi_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/guesttest"
	"github.com/provium/provium/internal/result"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func TestNetworkBasicsOnRealGuests(t *testing.T) {
	res := runGuestFile(t, "net_basic.test.lua")
	wantTests(t, res, 5)
}

// echoes calls fn with the timestamp (the host clock at the capture
// point) of every ICMPv4 echo request and reply in a pcap file, which must
// parse with gopacket as Ethernet.
func echoes(t *testing.T, path string, fn func(l *layers.ICMPv4, at time.Time)) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("%s: link type %v", path, r.LinkType())
	}
	for p := range gopacket.NewPacketSource(r, layers.LinkTypeEthernet).Packets() {
		if l, ok := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok {
			if typ := l.TypeCode.Type(); typ == layers.ICMPv4TypeEchoRequest || typ == layers.ICMPv4TypeEchoReply {
				fn(l, p.Metadata().Timestamp)
			}
		}
	}
}

// icmpEchoes counts the ICMPv4 echo requests and replies in a pcap file.
func icmpEchoes(t *testing.T, path string) (requests, replies int) {
	t.Helper()
	echoes(t, path, func(l *layers.ICMPv4, _ time.Time) {
		if l.TypeCode.Type() == layers.ICMPv4TypeEchoRequest {
			requests++
		} else {
			replies++
		}
	})
	return requests, replies
}

func TestNetworkRulesOnRealGuests(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PROVIUM_TEST_PCAP_DIR", dir)
	res := runGuestFile(t, "net_rules.test.lua")
	wantTests(t, res, 4)
	// a's port: b's 3 requests delivered, a's replies and requests accepted
	// from a. b's port: nothing from a arrives (a->b dropped), b's requests
	// leave.
	aReq, aRep := icmpEchoes(t, filepath.Join(dir, "dir_a.pcap"))
	bReq, bRep := icmpEchoes(t, filepath.Join(dir, "dir_b.pcap"))
	wReq, wRep := icmpEchoes(t, filepath.Join(dir, "dir_bridge.pcap"))
	if aReq != 5 || aRep != 3 {
		t.Errorf("a's capture: %d requests, %d replies; want 5 (3 from b delivered, 2 of a's own) and 3 (a's replies as accepted)", aReq, aRep)
	}
	if bReq != 3 || bRep != 0 {
		t.Errorf("b's capture: %d requests, %d replies; want b's 3 requests and no reply from a", bReq, bRep)
	}
	if wReq != 5 || wRep != 3 {
		t.Errorf("bridge capture: %d requests, %d replies; want every frame once as accepted (5, 3)", wReq, wRep)
	}
	checkLatencies(t, filepath.Join(dir, "lat_a.pcap"), filepath.Join(dir, "lat_b.pcap"))
}

// echoKey names one ICMP echo: the ping's payload size (the test's phase),
// identifier and sequence number.
type echoKey struct {
	size    int
	id, seq uint16
}

// echoTimes maps the echo requests and replies in a pcap file to their
// capture timestamps.
func echoTimes(t *testing.T, path string) (requests, replies map[echoKey]time.Time) {
	t.Helper()
	requests, replies = map[echoKey]time.Time{}, map[echoKey]time.Time{}
	echoes(t, path, func(l *layers.ICMPv4, at time.Time) {
		k := echoKey{len(l.Payload), l.Id, l.Seq}
		if l.TypeCode.Type() == layers.ICMPv4TypeEchoRequest {
			requests[k] = at
		} else {
			replies[k] = at
		}
	})
	return requests, replies
}

// checkLatencies reads the latency test's pings from the captures of a's
// port (a's requests as accepted, b's replies as delivered) and b's port
// (a's requests as delivered, b's replies as accepted): per phase the
// minimum over its pings of each one-way delay through the switch and of
// the round trip at a's port, all on the host clock, so a loaded host's
// guest clocks do not enter. Minimums: scheduling on a loaded host only
// ever adds.
func checkLatencies(t *testing.T, aPath, bPath string) {
	t.Helper()
	aReq, aRep := echoTimes(t, aPath)
	bReq, bRep := echoTimes(t, bPath)
	type mins struct{ ab, ba, rtt time.Duration }
	phase := func(size int) mins {
		m := mins{time.Hour, time.Hour, time.Hour}
		n := 0
		for k, sent := range aReq {
			if k.size != size {
				continue
			}
			arrived, ok1 := bReq[k]
			answered, ok2 := bRep[k]
			back, ok3 := aRep[k]
			if !ok1 || !ok2 || !ok3 {
				continue
			}
			n++
			m.ab = min(m.ab, arrived.Sub(sent))
			m.ba = min(m.ba, back.Sub(answered))
			m.rtt = min(m.rtt, back.Sub(sent))
		}
		if n < 5 {
			t.Fatalf("phase %d: %d complete pings in the captures, want at least 5 of 10", size, n)
		}
		return m
	}
	base, whole, dir := phase(56), phase(57), phase(58)
	within := func(what string, got, want time.Duration) {
		t.Helper()
		if tol := max(want/5, 40*time.Millisecond); got < want-tol || got > want+tol {
			t.Errorf("%s: %v, want %v ± %v", what, got, want, tol)
		}
	}
	t.Logf("min one-way a->b / b->a / round trip: base %v %v %v, whole %v %v %v, directional %v %v %v",
		base.ab, base.ba, base.rtt, whole.ab, whole.ba, whole.rtt, dir.ab, dir.ba, dir.rtt)
	within("no rule: a->b", base.ab, 0)
	within("no rule: b->a", base.ba, 0)
	within("whole-bridge 200 ms: a->b", whole.ab, 200*time.Millisecond)
	within("whole-bridge 200 ms: b->a", whole.ba, 200*time.Millisecond)
	within("whole-bridge 200 ms: round trip added", whole.rtt-base.rtt, 400*time.Millisecond)
	within("directional a->b 200 ms: a->b", dir.ab, 200*time.Millisecond)
	within("directional a->b 200 ms: b->a", dir.ba, 0)
	within("directional a->b 200 ms: round trip added", dir.rtt-base.rtt, 200*time.Millisecond)
}

func TestNetworkHotAttachAndRawLinksOnRealGuests(t *testing.T) {
	res := runGuestFile(t, "net_attach.test.lua")
	wantTests(t, res, 3)
}

// Boot-time NICs sit where upstream puts them (eth0 at 0000:00:02.0, eth1
// at 00:03.0), and a snapshot/restore keeps both the layout and the names.
func TestNetworkNICPCIAddressesOnRealGuests(t *testing.T) {
	res := runGuestFile(t, "net_pci.test.lua")
	wantTests(t, res, 2)
}

func TestNetworkStateSurvivesResetBetweenTests(t *testing.T) {
	res := runGuestFile(t, "net_reset.test.lua")
	wantTests(t, res, 2)
}

// Two files using a bridge `lan` at once: each capture holds frames from
// its own guest only.
func TestNetworkTwoFilesDoNotShareABridge(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PROVIUM_TEST_PCAP_DIR", dir)
	cfg := guesttest.Config(t)
	b, err := guest.New(guest.Options{Config: cfg, ScratchRoot: guesttest.ScratchRoot(t), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var wg sync.WaitGroup
	results := make([]*result.File, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runOn(cfg, b, "net_iso.test.lua")
		}()
	}
	wg.Wait()
	for _, res := range results {
		if res.HasChunkError {
			t.Fatalf("chunk error: %s", res.ChunkError)
		}
		for _, tr := range res.Tests {
			if tr.Status != result.Passed {
				t.Fatalf("%s: %s: %s", tr.Name, tr.Status, tr.Message)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.pcap"))
	if len(files) != 2 {
		t.Fatalf("captures: %v", files)
	}
	for _, p := range files {
		own := strings.TrimSuffix(filepath.Base(p), ".pcap")
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewReader(fh)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for pkt := range gopacket.NewPacketSource(r, layers.LinkTypeEthernet).Packets() {
			eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if src := strings.ReplaceAll(eth.SrcMAC.String(), ":", ""); src != own {
				t.Errorf("%s: a frame from %s (another file's guest?)", filepath.Base(p), eth.SrcMAC)
			}
			n++
		}
		fh.Close()
		if n == 0 {
			t.Errorf("%s: no frames captured", filepath.Base(p))
		}
	}
}

func TestNetworkUplinkReachesTheHostLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello from the host")
	})}
	go srv.Serve(ln)
	defer srv.Close()
	t.Setenv("PROVIUM_TEST_HTTP_PORT", fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	res := runGuestFile(t, "net_uplink.test.lua")
	wantTests(t, res, 3)
}

// A profile without guest_os (the default image's, with the key dropped, as
// profiles written for upstream are) gets raw links on a bridge made
// without opts; the guests address themselves and reach each other.
func TestNetworkRawLinksByDefaultWithoutGuestOS(t *testing.T) {
	res, _ := runGuestFileWith(t, plainProfileConfig(t), "net_raw_default.test.lua")
	wantTests(t, res, 2)
}

// A VM hot-attached to a bridge after boot survives vm:snapshot/restore,
// lab snapshots and reset_between_tests with its card, address and name.
func TestNetworkHotAttachedVMSnapshotsOnRealGuests(t *testing.T) {
	res := runGuestFile(t, "net_hotsnap.test.lua")
	wantTests(t, res, 3)
}

func TestNetworkRawLinksLeaveTheGuestAlone(t *testing.T) {
	res := runGuestFile(t, "net_raw.test.lua")
	wantTests(t, res, 1)
}
