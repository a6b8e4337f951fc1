package accel

import (
	"context"
	"fmt"
)

// Decision is the outcome of Resolve.
type Decision struct {
	Accel  Mode    // KVM or TCG, never Auto
	Notice string  // the one-line notice to print (unless -q) when auto fell back; else ""
	Probe  *Result // the probe verdict; nil when TCG was requested
	// Requested and Source are the request Resolve decided on.
	Requested Mode
	Source    string
}

// Why says why Accel was chosen, in words: the request, where it came
// from, and what the probe found, e.g. `auto (default): KVM unusable
// (/dev/kvm does not exist)`. JUnit's accel_reason property carries it.
func (d Decision) Why() string {
	req := fmt.Sprintf("%s (%s)", d.Requested, d.Source)
	if d.Requested != Auto {
		req = fmt.Sprintf("%s requested (%s)", d.Requested, d.Source)
	}
	switch {
	case d.Probe == nil:
		return req
	case d.Probe.Usable:
		return req + ": KVM usable"
	default:
		return req + ": KVM unusable (" + d.Probe.Reason.Text + ")"
	}
}

// UnusableError is returned when KVM was explicitly requested but the probe
// found it unusable. Fix() gives the remedy for the preflight's `→` line.
type UnusableError struct {
	Source string // where the request came from, e.g. "--accel kvm"
	Reason Reason
}

func (e *UnusableError) Error() string {
	return fmt.Sprintf("accel: KVM requested (%s) but unusable: %s", e.Source, e.Reason.Text)
}

// Fix is what the user can do about it.
func (e *UnusableError) Fix() string {
	return "use `--accel auto` or `--accel tcg`, or: " + e.Reason.Fix
}

// FallbackNotice is the line printed when "auto" falls back to TCG.
func FallbackNotice(r Reason) string {
	return fmt.Sprintf("provium: KVM unusable (%s); using TCG (guests run slower)", r.Text)
}

// Resolve turns the requested mode into the accelerator to use. source names
// where the request came from and appears in the error for an unusable "kvm".
func Resolve(ctx context.Context, requested, source string, opts Options) (Decision, error) {
	mode, err := ParseMode(requested)
	if err != nil {
		return Decision{}, err
	}
	if mode == TCG {
		return Decision{Accel: TCG, Requested: mode, Source: source}, nil
	}
	r := Probe(ctx, opts)
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("accel: probing KVM: %w", err)
	}
	if r.Usable {
		return Decision{Accel: KVM, Probe: &r, Requested: mode, Source: source}, nil
	}
	if mode == KVM {
		return Decision{}, &UnusableError{Source: source, Reason: r.Reason}
	}
	return Decision{Accel: TCG, Notice: FallbackNotice(r.Reason), Probe: &r, Requested: mode, Source: source}, nil
}
