package luaapi

import (
	"fmt"

	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
)

// bridgeNetworkOps are the switch behaviours that arrive with the network
// support; until then they raise instead of pretending to work.
var bridgeNetworkOps = []string{
	"partition", "unpartition", "partition_all", "restore_all", "is_partitioned",
	"add_latency", "drop_rate", "bandwidth_limit", "add_directional_latency",
	"directional_drop_rate", "reset", "latency_ms", "drop_rate_pct", "bandwidth_bps",
	"isolate", "unisolate", "is_isolated", "route", "routes", "enable_uplink",
	"disable_uplink", "nic", "capture",
}

// attachTarget converts argument i into what lab.Bridge.Attach accepts: a
// *lab.VM or a name; plain values go to the core, which names their type.
func attachTarget(L *lua.Thread, i int) (any, error) {
	if s, ok := L.ToString(i); ok {
		return s, nil
	}
	if v, _, ok := L.ToObject(i); ok {
		return v, nil
	}
	v, err := ToGo(L, i)
	if err != nil {
		return nil, fmt.Errorf("bridge expected a VM userdata or string, got %s", L.TypeName(i))
	}
	return v, nil
}

func (a *API) bridgeClass() lua.Class {
	ms := map[string]method{
		"attach": func(L *lua.Thread) (int, error) {
			b, err := self[*lab.Bridge](L, "bridge:attach")
			if err != nil {
				return 0, err
			}
			var targets []any
			if L.Type(2) == lua.TypeTable {
				for k := int64(1); L.RawGetI(2, k) != lua.TypeNil; k++ {
					t, err := attachTarget(L, -1)
					L.Pop(1)
					if err != nil {
						return 0, err
					}
					targets = append(targets, t)
				}
				L.Pop(1)
			} else {
				t, err := attachTarget(L, 2)
				if err != nil {
					return 0, err
				}
				targets = append(targets, t)
			}
			if err := b.Attach(targets...); err != nil {
				return 0, err
			}
			L.PushValue(1)
			return 1, nil
		},
		"detach": func(L *lua.Thread) (int, error) {
			b, err := self[*lab.Bridge](L, "bridge:detach")
			if err != nil {
				return 0, err
			}
			t, err := attachTarget(L, 2)
			if err != nil {
				return 0, err
			}
			return 0, b.Detach(t)
		},
		"members": func(L *lua.Thread) (int, error) {
			b, err := self[*lab.Bridge](L, "bridge:members")
			if err != nil {
				return 0, err
			}
			PushGo(L, b.Members())
			return 1, nil
		},
		"name": func(L *lua.Thread) (int, error) {
			b, err := self[*lab.Bridge](L, "bridge:name")
			if err != nil {
				return 0, err
			}
			L.PushString(b.Name())
			return 1, nil
		},
		"close": func(L *lua.Thread) (int, error) {
			b, err := self[*lab.Bridge](L, "bridge:close")
			if err != nil {
				return 0, err
			}
			_ = b.Close(L.Context())
			return 0, nil
		},
	}
	for _, op := range bridgeNetworkOps {
		ms[op] = notYet("bridge:"+op, "switch behaviour arrives with the network support")
	}
	return lua.Class{
		Name:    classBridge,
		Methods: toFunctions(ms),
		Meta: map[string]lua.Function{
			"__eq": eq,
			"__tostring": func(L *lua.Thread) (int, error) {
				b, err := self[*lab.Bridge](L, "bridge")
				if err != nil {
					return 0, err
				}
				L.PushString(fmt.Sprintf("bridge(%s members=%d)", b.Name(), len(b.Members())))
				return 1, nil
			},
		},
	}
}
