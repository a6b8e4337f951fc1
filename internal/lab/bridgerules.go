package lab

import (
	"fmt"
	"math"

	"github.com/provium/provium/internal/netsim"
)

// Rule error texts (10-lua-api.md §13).
const (
	ErrFmtDirectionalKey = "bridge:%s: directional form needs `%s`"
	ErrFmtRuleArgType    = "bridge:%s: expected number or table, got %s"
	errFmtLatencyValue   = "bridge:%s: latency must be a finite number of ms >= 0 (got %v)"
	errFmtDropValue      = "bridge:%s: drop rate must be a percentage from 0 to 100 (got %v)"
	errFmtBandwidthValue = "bridge:%s: bandwidth must be an integer number of bits/s >= 0 (got %v)"
)

// Partition is `bridge:partition(a, b)`: drop a->b and b->a; neither needs
// to be attached.
func (b *Bridge) Partition(x, y any) error {
	a, err := b.memberName("partition", x)
	if err != nil {
		return err
	}
	c, err := b.memberName("partition", y)
	if err != nil {
		return err
	}
	b.sw.Partition(a, c, false)
	return nil
}

// PartitionDirectional is `bridge:partition({from=, to=})`: drop from->to
// only; both must be attached.
func (b *Bridge) PartitionDirectional(from, to any) error {
	f, t, err := b.attachedPair("partition", from, to)
	if err != nil {
		return err
	}
	b.sw.Partition(f, t, true)
	return nil
}

// Unpartition removes both directions (directional=false) or one;
// detached endpoints are fine.
func (b *Bridge) Unpartition(x, y any, directional bool) error {
	a, err := b.memberName("unpartition", x)
	if err != nil {
		return err
	}
	c, err := b.memberName("unpartition", y)
	if err != nil {
		return err
	}
	b.sw.Unpartition(a, c, directional)
	return nil
}

// PartitionAll partitions every ordered pair of current members.
func (b *Bridge) PartitionAll() { b.sw.PartitionAll(b.Members()) }

// RestoreAll clears every partition.
func (b *Bridge) RestoreAll() { b.sw.RestoreAll() }

// IsPartitioned reports whether a->b is dropped.
func (b *Bridge) IsPartitioned(x, y any) (bool, error) {
	a, err := b.memberName("is_partitioned", x)
	if err != nil {
		return false, err
	}
	c, err := b.memberName("is_partitioned", y)
	if err != nil {
		return false, err
	}
	return b.sw.IsPartitioned(a, c), nil
}

// SetIsolated is `bridge:isolate(vm)` / `unisolate(vm)`.
func (b *Bridge) SetIsolated(method string, x any, on bool) error {
	n, err := b.memberName(method, x)
	if err != nil {
		return err
	}
	b.sw.SetIsolated(n, on)
	return nil
}

// IsIsolated is `bridge:is_isolated(vm)`.
func (b *Bridge) IsIsolated(x any) (bool, error) {
	n, err := b.memberName("is_isolated", x)
	if err != nil {
		return false, err
	}
	return b.sw.IsIsolated(n), nil
}

// Reset is `bridge:reset()`: partitions, impairments and isolation go;
// members, routes, uplink and link states stay.
func (b *Bridge) Reset() { b.sw.Reset() }

// Impairment is the whole-bridge impairment.
func (b *Bridge) Impairment() netsim.Impairment { return b.sw.Whole() }

// PairImpairment is the directional impairment of (from, to).
func (b *Bridge) PairImpairment(from, to any) (netsim.Impairment, error) {
	f, err := b.memberName("impairment", from)
	if err != nil {
		return netsim.Impairment{}, err
	}
	t, err := b.memberName("impairment", to)
	if err != nil {
		return netsim.Impairment{}, err
	}
	return b.sw.PairImpairment(f, t), nil
}

// ImpairmentKind names one impairment setting.
type ImpairmentKind int

const (
	Latency ImpairmentKind = iota
	Drop
	Bandwidth
)

// checkValue validates a setting's value for method.
func checkValue(method string, kind ImpairmentKind, v float64) error {
	switch kind {
	case Latency:
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			return fmt.Errorf(errFmtLatencyValue, method, v)
		}
	case Drop:
		if math.IsNaN(v) || v < 0 || v > 100 {
			return fmt.Errorf(errFmtDropValue, method, v)
		}
	case Bandwidth:
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v != math.Trunc(v) || v >= 1<<63 {
			return fmt.Errorf(errFmtBandwidthValue, method, v)
		}
	}
	return nil
}

func apply(i *netsim.Impairment, kind ImpairmentKind, v float64) {
	switch kind {
	case Latency:
		i.LatencyMs = v
	case Drop:
		i.DropPct = v
	case Bandwidth:
		i.BandwidthBps = uint64(v)
	}
}

// SetImpairment sets one whole-bridge value (add_latency, drop_rate,
// bandwidth_limit with a number); 0 clears it.
func (b *Bridge) SetImpairment(method string, kind ImpairmentKind, v float64) error {
	if err := checkValue(method, kind, v); err != nil {
		return err
	}
	b.sw.UpdateWhole(func(i *netsim.Impairment) { apply(i, kind, v) })
	return nil
}

// SetPairImpairment sets one value of exactly the (from, to) pair; both
// must be attached.
func (b *Bridge) SetPairImpairment(method string, from, to any, kind ImpairmentKind, v float64) error {
	f, t, err := b.attachedPair(method, from, to)
	if err != nil {
		return err
	}
	if err := checkValue(method, kind, v); err != nil {
		return err
	}
	b.sw.UpdatePair(f, t, func(i *netsim.Impairment) { apply(i, kind, v) })
	return nil
}

func (b *Bridge) attachedPair(method string, from, to any) (string, string, error) {
	f, err := b.attachedName(method, from)
	if err != nil {
		return "", "", err
	}
	t, err := b.attachedName(method, to)
	if err != nil {
		return "", "", err
	}
	return f, t, nil
}
