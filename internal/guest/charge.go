package guest

import (
	"context"
	"fmt"

	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/sched"
)

// vmCharge is a starting VM's charge: the machine keeps it once QEMU runs,
// else it goes back when the start fails.
type vmCharge struct {
	h    *sched.Hold
	kept bool
}

// keep hands the charge to the machine, which returns it at QEMU's exit.
func (c *vmCharge) keep() *sched.Hold {
	c.kept = true
	return c.h
}

// dropUnlessKept returns the charge of a start that failed.
func (c *vmCharge) dropUnlessKept() {
	if !c.kept {
		c.h.Release()
	}
}

// chargeVM charges a VM about to start to its file's pool account (none
// without a pool): drawn from the context's batch when lab:boot and its
// kin reserved one, else from the file's claim or the pool.
func chargeVM(ctx context.Context, spec lab.BootSpec, p *plan) (*vmCharge, error) {
	f := sched.FromContext(ctx)
	if f == nil {
		return &vmCharge{}, nil
	}
	h, err := f.Charge(ctx, "vm `"+spec.Path+"`", sched.VMCharge(uint64(p.memory), p.cpus))
	if err != nil {
		return nil, err
	}
	return &vmCharge{h: h}, nil
}

// reserve implements lab.Reserver: one all-or-nothing request for the sum
// of the VMs' charges (30-runtime.md B2). A VM whose profile is unknown
// adds nothing: its start fails with the profile's own error.
func (b *Backend) reserve(ctx context.Context, what string, specs []lab.BootSpec) (context.Context, func(), error) {
	f := sched.FromContext(ctx)
	if f == nil || b.opts.Config == nil || len(specs) == 0 {
		return ctx, func() {}, nil
	}
	var sum sched.Amount
	for _, s := range specs {
		prof, err := b.opts.Config.Profile(s.Profile)
		if err != nil {
			continue
		}
		mem, cpus := vmSize(prof, s.Opts)
		sum = sum.Add(sched.VMCharge(uint64(mem), cpus))
	}
	h, err := f.Acquire(ctx, fmt.Sprintf("%s %d VMs", what, len(specs)), sum)
	if err != nil {
		return ctx, nil, err
	}
	return sched.WithBatch(ctx, h), h.Release, nil
}

// Reserve implements lab.Reserver.
func (f *fileBackend) Reserve(ctx context.Context, what string, specs []lab.BootSpec) (context.Context, func(), error) {
	return f.b.reserve(ctx, what, specs)
}

// Reserve implements lab.Reserver.
func (f *lazyFile) Reserve(ctx context.Context, what string, specs []lab.BootSpec) (context.Context, func(), error) {
	b, err := f.l.get(ctx)
	if err != nil {
		return ctx, nil, err
	}
	return b.reserve(ctx, what, specs)
}
