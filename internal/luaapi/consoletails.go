package luaapi

import (
	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/result"
)

// ConsoleTails returns the last n bytes of console of every VM of labs (each
// with its sub-labs) that has run — booted, paused or dead — for a failed
// test's report (10-lua-api.md §2.5), in lab order: a lab's VMs in
// insertion order, then its sub-labs.
func (a *API) ConsoleTails(n int, labs ...*lab.Lab) []result.Console {
	var out []result.Console
	seen := map[*lab.VM]bool{}
	for _, l := range labs {
		if l == nil {
			continue
		}
		for _, sv := range l.TreeVMs() {
			vm := sv.VM
			if seen[vm] {
				continue
			}
			seen[vm] = true
			switch vm.State() {
			case lab.Booted, lab.Paused, lab.Dead:
			default:
				continue
			}
			m, _ := vm.Machine().(*guest.Machine)
			if m == nil {
				m = a.machines[vm]
			}
			if m != nil {
				out = append(out, result.Console{VM: vm.Path(), Tail: string(m.Console().Last(n))})
			}
		}
	}
	return out
}
