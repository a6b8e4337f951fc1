package cli

import (
	"context"

	"github.com/provium/provium/internal/accel"
	"github.com/provium/provium/internal/config"
	"github.com/provium/provium/internal/result"
)

// accelProperties are the JUnit `accel` and `accel_reason` properties: the
// accelerator the run chose for requested (never `auto`) and why. The
// probe's verdict is cached per boot, so asking again after the run costs
// nothing when a VM booted. A request that cannot be honoured (kvm without
// KVM under --no-preflight) is recorded as requested, with the error as
// the reason.
func (s *session) accelProperties(ctx context.Context, cfg *config.Config, requested string) map[string]string {
	_, source, _ := cfg.Accel(s.pf.accel)
	dec, err := accel.Resolve(context.WithoutCancel(ctx), requested, accelSourceText(source, requested),
		accel.Options{CacheDir: cfg.ScratchDir()})
	if err != nil {
		return map[string]string{"accel": requested, "accel_reason": err.Error()}
	}
	return map[string]string{"accel": string(dec.Accel), "accel_reason": dec.Why()}
}

// setProps overwrites the given properties of every file's report.
func setProps(files []*result.File, props map[string]string) {
	for _, f := range files {
		if f.Properties == nil {
			f.Properties = map[string]string{}
		}
		for k, v := range props {
			f.Properties[k] = v
		}
	}
}
