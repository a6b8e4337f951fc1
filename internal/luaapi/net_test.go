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

	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/guesttest"
	"github.com/provium/provium/internal/result"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func TestNetworkBasicsOnRealGuests(t *testing.T) {
	res := runGuestFile(t, "net_basic.test.lua")
	if len(res.Tests) != 5 {
		t.Fatalf("%d tests ran", len(res.Tests))
	}
}

// icmpEchoes counts the ICMPv4 echo requests and replies in a pcap file,
// which must parse with gopacket.
func icmpEchoes(t *testing.T, path string) (requests, replies int) {
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
		if l := p.Layer(layers.LayerTypeICMPv4); l != nil {
			switch l.(*layers.ICMPv4).TypeCode.Type() {
			case layers.ICMPv4TypeEchoRequest:
				requests++
			case layers.ICMPv4TypeEchoReply:
				replies++
			}
		}
	}
	return requests, replies
}

func TestNetworkRulesOnRealGuests(t *testing.T) {
	// Known flaky in a clean CI run (an RTT of 10 s under a 200 ms rule, a
	// capture missing one request, a TCP transfer timing out): issue 12
	// stays open until it is fixed. Run it with PROVIUM_NET_RULES_TEST=1.
	if os.Getenv("PROVIUM_NET_RULES_TEST") != "1" {
		t.Skip("latency/bandwidth/capture rules test is known flaky (issue 12); set PROVIUM_NET_RULES_TEST=1 to run it")
	}
	dir := t.TempDir()
	t.Setenv("PROVIUM_TEST_PCAP_DIR", dir)
	res := runGuestFile(t, "net_rules.test.lua")
	if len(res.Tests) != 4 {
		t.Fatalf("%d tests ran", len(res.Tests))
	}
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
}

func TestNetworkHotAttachAndRawLinksOnRealGuests(t *testing.T) {
	res := runGuestFile(t, "net_attach.test.lua")
	if len(res.Tests) != 3 {
		t.Fatalf("%d tests ran", len(res.Tests))
	}
}

func TestNetworkStateSurvivesResetBetweenTests(t *testing.T) {
	res := runGuestFile(t, "net_reset.test.lua")
	if len(res.Tests) != 2 {
		t.Fatalf("%d tests ran", len(res.Tests))
	}
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
	if len(res.Tests) != 3 {
		t.Fatalf("%d tests ran", len(res.Tests))
	}
}

// A profile without guest_os (the default image's, with the key dropped, as
// profiles written for upstream are) gets raw links on a bridge made
// without opts; the guests address themselves and reach each other.
func TestNetworkRawLinksByDefaultWithoutGuestOS(t *testing.T) {
	img := guesttest.Image(t)
	plain := strings.Replace(img.Profile, "[profiles.linux]", "[profiles.plain]", 1)
	plain = strings.Replace(plain, "guest_os = \"linux\"\n", "", 1)
	if strings.Contains(plain, "guest_os") || !strings.Contains(plain, "[profiles.plain]") {
		t.Fatalf("could not derive a profile without guest_os from:\n%s", img.Profile)
	}
	cfg := guesttest.ConfigText(t, img.Profile+"\n"+plain)
	if p, err := cfg.Profile("plain"); err != nil || p.GuestOSNamed {
		t.Fatalf("profile plain: %+v, %v", p, err)
	}
	res, _ := runGuestFileWith(t, cfg, "net_raw_default.test.lua")
	if len(res.Tests) != 2 {
		t.Fatalf("%d tests ran", len(res.Tests))
	}
}

// A VM hot-attached to a bridge after boot survives vm:snapshot/restore,
// lab snapshots and reset_between_tests with its card, address and name.
func TestNetworkHotAttachedVMSnapshotsOnRealGuests(t *testing.T) {
	res := runGuestFile(t, "net_hotsnap.test.lua")
	if len(res.Tests) != 3 {
		t.Fatalf("%d tests ran", len(res.Tests))
	}
}
