package netsim

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// fakeGuest is a test peer speaking QEMU's stream netdev framing on a
// port's socket, as a guest NIC would.
type fakeGuest struct {
	t    *testing.T
	mac  MAC
	conn net.Conn
	in   chan []byte
}

func dialGuest(t *testing.T, p *Port, mac MAC) *fakeGuest {
	t.Helper()
	if err := p.Listen(filepath.Join(t.TempDir(), "p.sock")); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("unix", p.SocketPath())
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGuest{t: t, mac: mac, conn: c, in: make(chan []byte, 4096)}
	go func() {
		defer close(g.in)
		for {
			f, err := ReadFrame(c)
			if err != nil {
				return
			}
			g.in <- f
		}
	}()
	t.Cleanup(func() { c.Close() })
	// The port serves a connection once accepted; wait for it.
	waitFor(t, p.Connected)
	return g
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func frame(dst, src MAC, payload string) []byte {
	f := append(append(append([]byte{}, dst[:]...), src[:]...), 0x88, 0xb5)
	return append(f, payload...)
}

var broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func (g *fakeGuest) send(dst MAC, payload string) {
	g.t.Helper()
	if err := WriteFrame(g.conn, frame(dst, g.mac, payload)); err != nil {
		g.t.Fatal(err)
	}
}

// expect waits for a frame with payload.
func (g *fakeGuest) expect(payload string) {
	g.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-g.in:
			if !ok {
				g.t.Fatalf("connection ended waiting for %q", payload)
			}
			if string(f[14:]) == payload {
				return
			}
		case <-timeout:
			g.t.Fatalf("no frame %q", payload)
		}
	}
}

// none checks that no frame with payload arrives while a later marker
// frame sent on the same path (by way of sync) does.
func (g *fakeGuest) noneBefore(payload, marker string) {
	g.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case f, ok := <-g.in:
			if !ok {
				g.t.Fatalf("connection ended waiting for %q", marker)
			}
			switch string(f[14:]) {
			case payload:
				g.t.Fatalf("frame %q arrived but must not", payload)
			case marker:
				return
			}
		case <-timeout:
			g.t.Fatalf("no marker %q", marker)
		}
	}
}

func newTestSwitch(t *testing.T, seed uint64) *Switch {
	t.Helper()
	s := New("lan", seed)
	t.Cleanup(s.Close)
	return s
}

func guests(t *testing.T, s *Switch, names ...string) map[string]*fakeGuest {
	out := map[string]*fakeGuest{}
	for i, n := range names {
		p, err := s.AddPort(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = dialGuest(t, p, PortMAC(1, i+1))
	}
	return out
}

func TestSwitchLearnsAndFloods(t *testing.T) {
	s := newTestSwitch(t, 1)
	g := guests(t, s, "a", "b", "c")
	g["a"].send(broadcast, "hello all")
	g["b"].expect("hello all")
	g["c"].expect("hello all")
	// b answers a: a was learned, so only a gets it.
	g["b"].send(g["a"].mac, "to a")
	g["a"].expect("to a")
	// Unknown unicast floods; c learns nothing it should not see.
	g["a"].send(g["b"].mac, "to b")
	g["b"].expect("to b")
	g["c"].send(broadcast, "marker")
	g["a"].expect("marker")
	g["b"].noneBefore("to a", "marker")
	// c must not have seen the unicast to a (learned) nor to b (learned).
	g["a"].send(broadcast, "marker2")
	for {
		f := <-g["c"].in
		if p := string(f[14:]); p == "to a" || p == "to b" {
			t.Fatalf("c saw unicast %q", p)
		} else if p == "marker2" {
			break
		}
	}
	// rx is counted once the write to the guest returned.
	waitFor(t, func() bool { c := s.Port("a").Counters(); return c.TxPackets == 3 && c.RxPackets == 2 })
}

func TestSwitchCountsMalformedFrames(t *testing.T) {
	s := newTestSwitch(t, 1)
	g := guests(t, s, "a", "b")
	if err := WriteFrame(g["a"].conn, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	g["a"].send(broadcast, "after")
	g["b"].expect("after")
	if c := s.Port("a").Counters(); c.Errors != 1 || c.TxPackets != 1 {
		t.Fatalf("counters = %+v, want 1 error, 1 tx", c)
	}
	// An oversize length prefix ends the connection and counts too.
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], MaxFrame+1)
	g["a"].conn.Write(hdr[:])
	waitFor(t, func() bool { return s.Port("a").Counters().Errors == 2 })
}

func TestSwitchPartitions(t *testing.T) {
	s := newTestSwitch(t, 1)
	g := guests(t, s, "a", "b", "c")
	s.Partition("a", "b", false)
	if !s.IsPartitioned("a", "b") || !s.IsPartitioned("b", "a") {
		t.Fatal("symmetric partition must drop both ways")
	}
	g["a"].send(broadcast, "x1")
	g["c"].expect("x1")
	g["c"].send(broadcast, "m1")
	g["b"].noneBefore("x1", "m1")

	s.Unpartition("a", "b", false)
	s.Partition("a", "b", true)
	if !s.IsPartitioned("a", "b") || s.IsPartitioned("b", "a") {
		t.Fatal("directional partition must drop a->b only")
	}
	g["a"].send(broadcast, "x2")
	g["b"].send(broadcast, "y2")
	g["a"].expect("y2")
	// Once c has x2, the switch has decided every copy of it.
	g["c"].expect("x2")
	g["c"].send(broadcast, "m2")
	g["b"].noneBefore("x2", "m2")
	if d := s.Port("b").Counters().Dropped; d != 2 {
		t.Fatalf("b dropped %d, want 2", d)
	}

	s.PartitionAll([]string{"a", "b", "c"})
	for _, p := range [][2]string{{"a", "c"}, {"c", "b"}, {"b", "a"}} {
		if !s.IsPartitioned(p[0], p[1]) {
			t.Fatalf("%v not partitioned", p)
		}
	}
	s.RestoreAll()
	if s.IsPartitioned("a", "b") {
		t.Fatal("restore_all left a partition")
	}
}

func TestSwitchIsolationSparesTheUplink(t *testing.T) {
	s := newTestSwitch(t, 1)
	g := guests(t, s, "a", "b")
	up, peer := net.Pipe()
	if _, err := s.AddPeer("uplink", up, true); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 16)
	go func() {
		for {
			f, err := ReadFrame(peer)
			if err != nil {
				return
			}
			got <- f
		}
	}()
	s.SetIsolated("a", true)
	g["a"].send(broadcast, "iso")
	if f := <-got; string(f[14:]) != "iso" {
		t.Fatalf("uplink got %q", f[14:])
	}
	g["a"].send(broadcast, "iso2")
	<-got
	// b got neither; a marker from the uplink reaches b.
	WriteFrame(peer, frame(broadcast, MAC{2, 0, 0, 0, 0, 9}, "m"))
	g["b"].noneBefore("iso", "m")
	s.SetIsolated("a", false)
	g["a"].send(broadcast, "free")
	g["b"].expect("free")
}

func TestSwitchLinkDownPassesNothing(t *testing.T) {
	s := newTestSwitch(t, 1)
	g := guests(t, s, "a", "b", "c")
	s.SetLink("b", false)
	g["a"].send(broadcast, "x")
	g["b"].send(broadcast, "from b")
	g["c"].expect("x")
	g["c"].send(broadcast, "m")
	g["a"].noneBefore("from b", "m")
	s.SetLink("b", true)
	g["a"].send(broadcast, "y")
	g["b"].noneBefore("x", "y")
}

// lossRun sends n frames a->b through a fresh switch with seed and the
// whole-bridge or directional loss pct, and returns which arrived.
func lossRun(t *testing.T, seed uint64, pct float64, directional bool, n int) []bool {
	s := newTestSwitch(t, seed)
	g := guests(t, s, "a", "b")
	if directional {
		s.UpdatePair("a", "b", func(i *Impairment) { i.DropPct = pct })
	} else {
		s.UpdateWhole(func(i *Impairment) { i.DropPct = pct })
	}
	// b says hello first so a's frames go unicast to it.
	g["b"].send(broadcast, "hello")
	g["a"].expect("hello")
	got := make([]bool, n)
	for i := range n {
		var p [4]byte
		binary.BigEndian.PutUint32(p[:], uint32(i))
		g["a"].send(g["b"].mac, string(p[:]))
	}
	waitFor(t, func() bool {
		c := s.Port("b").Counters()
		return c.RxPackets+c.Dropped >= uint64(n)+0 && s.Port("a").Counters().TxPackets >= uint64(n)
	})
	c := s.Port("b").Counters()
	for range c.RxPackets {
		f := <-g["b"].in
		got[binary.BigEndian.Uint32(f[14:])] = true
	}
	return got
}

func TestSwitchLossIsSeededAndNearTheRate(t *testing.T) {
	const n, pct = 1000, 30.0
	for _, directional := range []bool{false, true} {
		first := lossRun(t, 42, pct, directional, n)
		second := lossRun(t, 42, pct, directional, n)
		other := lossRun(t, 43, pct, directional, n)
		lost := 0
		for i := range first {
			if first[i] != second[i] {
				t.Fatalf("directional=%v: same seed, frame %d differs", directional, i)
			}
			if !first[i] {
				lost++
			}
		}
		// 6 standard deviations of a binomial(n, p): never flakes.
		sd := math.Sqrt(n*pct/100*(1-pct/100)) * 6
		if math.Abs(float64(lost)-n*pct/100) > sd {
			t.Fatalf("directional=%v: lost %d of %d, want %v ± %.0f", directional, lost, n, n*pct/100, sd)
		}
		same := true
		for i := range first {
			same = same && first[i] == other[i]
		}
		if same {
			t.Fatalf("directional=%v: seeds 42 and 43 dropped the same frames", directional)
		}
	}
}

func TestSwitchSeparateSwitchesShareNothing(t *testing.T) {
	h := NewHost()
	s1, n1, _ := h.NewSwitch("lan", 1)
	s2, n2, _ := h.NewSwitch("lan", 1)
	defer s1.Close()
	defer s2.Close()
	if n1 == n2 {
		t.Fatal("two switches got one number")
	}
	g1 := guests(t, s1, "a", "b")
	g2 := guests(t, s2, "a", "b")
	if s1.Port("a").SocketPath() == s2.Port("a").SocketPath() {
		t.Fatal("two switches share a socket path")
	}
	g1["a"].send(broadcast, "one")
	g2["a"].send(broadcast, "two")
	g1["b"].noneBefore("two", "one")
	g2["b"].noneBefore("one", "two")
}

func TestSwitchCapturesPcap(t *testing.T) {
	s := newTestSwitch(t, 1)
	g := guests(t, s, "a", "b")
	bc, err := s.Capture()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := s.Port("b").Capture()
	if err != nil {
		t.Fatal(err)
	}
	s.Partition("a", "b", true)
	g["a"].send(broadcast, "dropped")
	g["b"].send(broadcast, "delivered")
	g["a"].expect("delivered")
	// a's frame travels on a goroutine of its own: wait until the switch
	// has taken it (and dropped b's copy) before ending the captures.
	waitFor(t, func() bool { return s.Port("b").Counters().Dropped == 1 })
	s.Close()
	// The bridge capture sees both frames as accepted (before the
	// partition); b's capture sees its own frame only (a's was dropped).
	got := capturePayloads(t, bc)
	slices.Sort(got)
	if len(got) != 2 || got[0] != "delivered" || got[1] != "dropped" {
		t.Fatalf("bridge capture = %q", got)
	}
	if got := capturePayloads(t, pc); len(got) != 1 || got[0] != "delivered" {
		t.Fatalf("port capture = %q", got)
	}
}

// capturePayloads reads what a capture holds now (until EOF once ended)
// as pcap and returns the frames' payloads.
func capturePayloads(t *testing.T, c *Capture) []string {
	t.Helper()
	var all bytes.Buffer
	for {
		b, _ := c.Poll()
		if b == nil {
			break
		}
		if len(b) > CaptureChunkMax {
			t.Fatalf("chunk of %d bytes", len(b))
		}
		all.Write(b)
	}
	r, err := pcapgo.NewReader(&all)
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet || r.Snaplen() != 65535 {
		t.Fatalf("link type %v snaplen %d", r.LinkType(), r.Snaplen())
	}
	var payloads []string
	src := gopacket.NewPacketSource(r, layers.LinkTypeEthernet)
	for p := range src.Packets() {
		eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		payloads = append(payloads, string(eth.Payload))
	}
	return payloads
}

func TestSwitchStateRoundTrips(t *testing.T) {
	s := newTestSwitch(t, 7)
	s.Partition("a", "b", true)
	s.SetIsolated("c", true)
	s.SetLink("d", false)
	s.UpdateWhole(func(i *Impairment) { i.LatencyMs = 5 })
	s.UpdatePair("a", "c", func(i *Impairment) { i.BandwidthBps = 1000 })
	st := s.State()
	s2 := newTestSwitch(t, 1)
	s2.Load(st)
	got := s2.State()
	if got.Seed != 7 || len(got.Partitions) != 1 || got.Partitions[0] != (Pair{"a", "b"}) || got.Isolated[0] != "c" ||
		got.LinkDown[0] != "d" || got.Whole.LatencyMs != 5 || got.Pairs[0].BandwidthBps != 1000 {
		t.Fatalf("state after load = %+v", got)
	}
	s2.RemovePort("a")
	if st := s2.State(); len(st.Partitions) != 0 || len(st.Pairs) != 0 {
		t.Fatalf("rules naming a survive its removal: %+v", st)
	}
	_ = os.Remove
}

// recvWithin waits up to 10 s for a frame with payload and returns when it
// arrived.
func (g *fakeGuest) recvWithin(payload string) time.Time {
	g.t.Helper()
	g.expect(payload)
	return time.Now()
}

// A frame held by latency or shaping on an otherwise idle link leaves when
// it is due, not when the next frame arrives: nothing else is sent after
// it. Only lower bounds are asserted (the due time); the 10 s of expect is
// the failure mode (a stalled queue), far above any scheduling delay.
func TestSwitchHeldFrameLeavesOnAnIdleLink(t *testing.T) {
	cases := []struct {
		name   string
		set    func(s *Switch)
		frames int
		min    time.Duration
	}{
		{"whole-bridge latency", func(s *Switch) { s.UpdateWhole(func(i *Impairment) { i.LatencyMs = 200 }) }, 1, 200 * time.Millisecond},
		{"directional latency", func(s *Switch) { s.UpdatePair("a", "b", func(i *Impairment) { i.LatencyMs = 150 }) }, 1, 150 * time.Millisecond},
		// 80 kbit/s: the burst lets two full frames go at once, the third
		// waits one frame's cost (151 ms).
		{"bandwidth queue", func(s *Switch) { s.UpdateWhole(func(i *Impairment) { i.BandwidthBps = 80_000 }) }, 3, 151 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newTestSwitch(t, 1)
			g := guests(t, s, "a", "b")
			c.set(s)
			pad := string(make([]byte, bucketMTU-14))
			start := time.Now()
			for i := range c.frames {
				g["a"].send(g["b"].mac, fmt.Sprint(i)+pad)
			}
			var last time.Time
			for i := range c.frames {
				last = g["b"].recvWithin(fmt.Sprint(i) + pad)
			}
			if d := last.Sub(start); d < c.min {
				t.Fatalf("the held frame arrived after %v, before it was due (%v)", d, c.min)
			}
		})
	}
}

// Under a directional partition a->b (and a delay b->a), a's port capture
// holds every frame a sent and every frame delivered to it; b's holds its
// own frames and none of a's; the bridge capture holds each frame once.
// A frame a guest has received is in its port's capture already.
func TestSwitchCapturesEveryFrameUnderDirectionalRules(t *testing.T) {
	s := newTestSwitch(t, 1)
	g := guests(t, s, "a", "b")
	// Learn both MACs so the frames below go unicast.
	g["a"].send(broadcast, "hello a")
	g["b"].expect("hello a")
	g["b"].send(broadcast, "hello b")
	g["a"].expect("hello b")

	bc, _ := s.Capture()
	ac, _ := s.Port("a").Capture()
	pc, _ := s.Port("b").Capture()
	s.Partition("a", "b", true)
	s.UpdatePair("b", "a", func(i *Impairment) { i.LatencyMs = 50 })
	var fromA, fromB []string
	for i := range 3 {
		fromB = append(fromB, fmt.Sprintf("b%d", i))
		g["b"].send(g["a"].mac, fromB[i])
		if i < 2 {
			fromA = append(fromA, fmt.Sprintf("a%d", i))
			g["a"].send(g["b"].mac, fromA[i])
		}
	}
	for _, p := range fromB {
		g["a"].expect(p)
	}
	// Once b's last frame is in, every frame a sent before it has been
	// decided (each port's frames are read in order): wait for a's.
	waitFor(t, func() bool { return s.Port("a").Counters().TxPackets == 3 && s.Port("b").Counters().Dropped == 2 })

	sorted := func(xs ...[]string) []string {
		out := slices.Concat(xs...)
		slices.Sort(out)
		return out
	}
	check := func(name string, c *Capture, want []string) {
		t.Helper()
		if got := sorted(capturePayloads(t, c)); !slices.Equal(got, want) {
			t.Errorf("%s capture = %q, want %q", name, got, want)
		}
	}
	check("a's", ac, sorted(fromA, fromB))
	check("b's", pc, sorted(fromB))
	check("bridge", bc, sorted(fromA, fromB))
}
