package netsim

import (
	"testing"
	"time"
)

var t0 = time.Unix(1000, 0)

func TestRulesLatencyComposesExactlyPerPair(t *testing.T) {
	r := newRules(1)
	r.setWhole(Impairment{LatencyMs: 10})
	r.setPair(Pair{"a", "b"}, Impairment{LatencyMs: 200})
	at, v := r.decide("a", "b", false, 100, t0)
	if v != deliver || at.Sub(t0) != 210*time.Millisecond {
		t.Fatalf("a->b delay %v, want 210ms", at.Sub(t0))
	}
	if at, _ := r.decide("b", "a", false, 100, t0); at.Sub(t0) != 10*time.Millisecond {
		t.Fatalf("b->a delay %v, want 10ms (directional rule is a->b only)", at.Sub(t0))
	}
	if at, _ := r.decide("a", "c", false, 100, t0); at.Sub(t0) != 10*time.Millisecond {
		t.Fatalf("a->c delay %v, want 10ms", at.Sub(t0))
	}
}

func TestRulesPartitionBeforeEverything(t *testing.T) {
	r := newRules(1)
	r.parts[Pair{"a", "b"}] = true
	r.setWhole(Impairment{BandwidthBps: 8000})
	if _, v := r.decide("a", "b", false, 1000, t0); v != dropRule {
		t.Fatal("partitioned copy delivered")
	}
	// The dropped copy used no tokens: the next frame on another pair
	// leaves at once (burst allowance).
	if at, _ := r.decide("b", "a", false, 1000, t0); at.Sub(t0) > time.Second {
		t.Fatalf("b->a waited %v", at.Sub(t0))
	}
}

// A saturating sender: frames arriving back to back leave at the rate.
func TestRulesBandwidthShapesToTheRate(t *testing.T) {
	const bps, size, n = 8_000_000, 1000, 2000
	r := newRules(1)
	r.setWhole(Impairment{BandwidthBps: bps})
	now := t0
	var last time.Time
	sent := 0
	for range n {
		at, v := r.decide("a", "b", false, size, now)
		if v == deliver {
			sent++
			last = at
		}
		// The sender paces itself to the link: it sends again as soon as
		// the queue has room (like TCP's self-clocking), here every 0.5 ms.
		now = now.Add(500 * time.Microsecond)
	}
	rate := float64(sent*size*8) / last.Sub(t0).Seconds()
	if rate < bps*0.98 || rate > bps*1.02 {
		t.Fatalf("shaped rate %.0f bit/s, want %d ± 2%%", rate, bps)
	}
}

func TestRulesWholeAndPairBandwidthCompose(t *testing.T) {
	r := newRules(1)
	r.setWhole(Impairment{BandwidthBps: 8_000_000})
	r.setPair(Pair{"a", "b"}, Impairment{BandwidthBps: 800_000})
	now := t0
	var last time.Time
	sent := 0
	for range 500 {
		if at, v := r.decide("a", "b", false, 1000, now); v == deliver {
			sent++
			last = at
		}
		now = now.Add(5 * time.Millisecond)
	}
	rate := float64(sent*8000) / last.Sub(t0).Seconds()
	if rate < 800_000*0.97 || rate > 800_000*1.03 {
		t.Fatalf("a->b rate %.0f, want the pair's 800000", rate)
	}
}

func TestRulesBandwidthQueueOverflowDrops(t *testing.T) {
	r := newRules(1)
	r.setPair(Pair{"a", "b"}, Impairment{BandwidthBps: 80_000}) // 10 kB/s
	drops := 0
	for range 100 { // 100 kB at one instant: far beyond 100 ms of queue
		if _, v := r.decide("a", "b", false, 1000, t0); v == dropRule {
			drops++
		}
	}
	if drops == 0 || drops == 100 {
		t.Fatalf("%d of 100 dropped; want a full queue to drop some", drops)
	}
}

func TestRulesResetKeepsLinks(t *testing.T) {
	r := newRules(1)
	r.linkDown["a"] = true
	r.isolated["b"] = true
	r.setWhole(Impairment{DropPct: 50})
	r.clear()
	if !r.linkDown["a"] || r.isolated["b"] || r.whole.DropPct != 0 {
		t.Fatal("reset must clear rules and keep link states")
	}
}

// ACK-sized frames pay tokens but never wait behind bulk data.
func TestRulesSmallFramesSkipTheQueueButPay(t *testing.T) {
	r := newRules(1)
	r.setWhole(Impairment{BandwidthBps: 8_000_000})
	var last time.Time
	for range 500 { // 0.5 s of data at once: the queue fills
		if at, v := r.decide("a", "b", false, 1000, t0); v == deliver {
			last = at
		}
	}
	at, v := r.decide("b", "a", false, 66, t0)
	if v != deliver || !at.Equal(t0) {
		t.Fatalf("an ACK waited %v behind data", at.Sub(t0))
	}
	after, _ := r.decide("a", "b", false, 1000, t0)
	if after.Sub(last) < r.wholeBucket.cost(1000+66) {
		t.Fatalf("the ACK's tokens were not charged: next data frame %v after the last", after.Sub(last))
	}
}

// 1 MB arriving at once on an 8 Mbit/s link: the queue takes what fits in
// its second, and what it takes leaves back to back at the rate, the first
// at once, with no gap longer than one frame's cost (no stall). An idle
// bucket lets no more than its small burst through at once, however long
// it was idle.
func TestRulesBandwidthBurstLeavesAtTheRateWithoutStalls(t *testing.T) {
	const bps, size = 8_000_000, bucketMTU
	r := newRules(1)
	r.setWhole(Impairment{BandwidthBps: bps})
	cost := r.wholeBucket.cost(size)
	for round, start := range []time.Time{t0, t0.Add(time.Hour)} {
		var deps []time.Time
		for range (1 << 20) / size {
			if at, v := r.decide("a", "b", false, size, start); v == deliver {
				deps = append(deps, at)
			}
		}
		if len(deps) < int(bucketQueue/cost) || !deps[0].Equal(start) {
			t.Fatalf("round %d: %d frames queued, first leaves after %v; want ≥ %d, at once", round, len(deps), deps[0].Sub(start), int(bucketQueue/cost))
		}
		for i := 1; i < len(deps); i++ {
			if gap := deps[i].Sub(deps[i-1]); gap > cost {
				t.Fatalf("round %d: frame %d leaves %v after the previous (a frame costs %v)", round, i, gap, cost)
			}
		}
		// Past the burst allowance every frame waits exactly its cost.
		last := deps[len(deps)-1]
		if got := float64((len(deps)-2)*size*8) / last.Sub(deps[1]).Seconds(); got < bps*0.999 || got > bps*1.001 {
			t.Fatalf("round %d: queued frames leave at %.0f bit/s, want %d", round, got, bps)
		}
		if !deps[2].After(start) {
			t.Fatalf("round %d: a third frame left at once; the burst allows 2", round)
		}
	}
}
