package netsim

import "time"

// bucket is a token-bucket shaper in virtual time: a frame leaves when the
// bucket has paid for it, so the long-run rate is exactly bps; frames that
// would wait longer than the queue allows are dropped (a full queue), as a
// tc tbf qdisc does. Shaping rather than policing keeps TCP at the rate.
type bucket struct {
	bps   uint64
	burst time.Duration // how far ahead of the clock an idle bucket lets a frame go
	limit time.Duration // longest queueing delay before frames drop
	tat   time.Time     // when the bucket has sent everything charged so far
}

// Queue sizing: room for 1 s of traffic (at least a few full frames), so
// a TCP flow keeps the link busy through its window cuts instead of
// stalling on retransmission timeouts (measured: a 100 ms queue held TCP
// at half the rate on TCG guests); a burst of a few frames so an idle
// bucket does not delay the first.
const (
	bucketQueue     = time.Second
	bucketMinFrames = 4
	bucketMTU       = 1514
)

func newBucket(bps uint64) *bucket {
	b := &bucket{bps: bps, limit: bucketQueue}
	if min := b.cost(bucketMinFrames * bucketMTU); b.limit < min {
		b.limit = min
	}
	b.burst = b.cost(2 * bucketMTU)
	return b
}

// cost is how long size bytes take at the bucket's rate.
func (b *bucket) cost(size int) time.Duration {
	return time.Duration(float64(size*8) / float64(b.bps) * float64(time.Second))
}

// peek says when a frame of size bytes arriving at now would leave, and
// whether the queue has room for it; nothing is charged.
func (b *bucket) peek(size int, now time.Time) (time.Time, bool) {
	start := b.tat
	if floor := now.Add(-b.burst); start.Before(floor) {
		start = floor
	}
	end := start.Add(b.cost(size))
	if end.Before(now) {
		end = now
	}
	return end, end.Sub(now) <= b.limit
}

// smallFrame is the largest frame that skips the queue (see rules.decide):
// room for a TCP ACK with options and any ARP or ICMP control frame.
const smallFrame = 128

// charge takes a small frame's tokens without making it wait.
func (b *bucket) charge(size int, now time.Time) {
	b.take(size, now)
}

// take charges the frame and returns when it leaves.
func (b *bucket) take(size int, now time.Time) time.Time {
	start := b.tat
	if floor := now.Add(-b.burst); start.Before(floor) {
		start = floor
	}
	b.tat = start.Add(b.cost(size))
	if b.tat.Before(now) {
		return now
	}
	return b.tat
}
