package luaapi

import (
	"context"
	"sync"

	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/result"
)

// DiagnoseVMs asks every running VM of labs what it is doing (guest
// Diagnose), in boot order, in parallel, each at most limit bytes. It only
// reads the lab graph, so a watchdog may call it while the file's Lua
// state is blocked in a guest operation.
func DiagnoseVMs(ctx context.Context, limit int, labs ...*lab.Lab) []result.Console {
	var vms []*lab.VM
	seen := map[*lab.VM]bool{}
	for _, l := range labs {
		if l == nil {
			continue
		}
		for _, sv := range l.TreeVMs() {
			if !seen[sv.VM] && sv.VM.State() == lab.Booted {
				seen[sv.VM] = true
				vms = append(vms, sv.VM)
			}
		}
	}
	out := make([]result.Console, len(vms))
	var wg sync.WaitGroup
	for i, vm := range vms {
		m, ok := vm.Machine().(*guest.Machine)
		if !ok || m == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = result.Console{VM: vm.Path() + " (diagnosis)", Tail: m.Diagnose(ctx, limit)}
		}()
	}
	wg.Wait()
	kept := out[:0]
	for _, c := range out {
		if c.VM != "" {
			kept = append(kept, c)
		}
	}
	return kept
}
