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
		return Decision{Accel: TCG}, nil
	}
	r := Probe(ctx, opts)
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("accel: probing KVM: %w", err)
	}
	if r.Usable {
		return Decision{Accel: KVM, Probe: &r}, nil
	}
	if mode == KVM {
		return Decision{}, &UnusableError{Source: source, Reason: r.Reason}
	}
	return Decision{Accel: TCG, Notice: FallbackNotice(r.Reason), Probe: &r}, nil
}
