package luaapi

import (
	"context"
	"fmt"
	"io"

	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/netsim"
)

const (
	classNic     = "Nic"
	classCapture = "Capture"

	errCaptureClosed  = "capture closed"
	kindBridgeCapture = "bridge_capture"
	kindNicCapture    = "nic_capture"
)

// attachTarget converts argument i into what lab.Bridge accepts as a VM: a
// *lab.VM or a name; plain values go to the core, which names their type.
func attachTarget(L *lua.Thread, i int) (any, error) {
	if s, ok := L.ToString(i); ok && L.Type(i) == lua.TypeString {
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

// vmField reads t[key] of the table at i as a VM argument; missing keys
// raise the spec's directional-form error.
func vmField(L *lua.Thread, i int, op, key string) (any, error) {
	if L.RawGetField(i, key) == lua.TypeNil {
		L.Pop(1)
		return nil, fmt.Errorf(lab.ErrFmtDirectionalKey, op, key)
	}
	defer L.Pop(1)
	return attachTarget(L, -1)
}

// numField reads t[key] as a number.
func numField(L *lua.Thread, i int, op, key string) (float64, error) {
	t := L.RawGetField(i, key)
	defer L.Pop(1)
	if t == lua.TypeNil {
		return 0, fmt.Errorf(lab.ErrFmtDirectionalKey, op, key)
	}
	f, ok := L.ToNumber(-1)
	if !ok || t != lua.TypeNumber {
		return 0, fmt.Errorf("bridge:%s: `%s` must be a number, got %s", op, key, L.TypeName(-1))
	}
	return f, nil
}

// setImpairment is add_latency/drop_rate/bandwidth_limit: a number for the
// whole bridge, or {from=, to=, <key>=} for one direction.
func setImpairment(op, key string, kind lab.ImpairmentKind, directionalOnly bool) method {
	return func(L *lua.Thread) (int, error) {
		b, err := self[*lab.Bridge](L, "bridge:"+op)
		if err != nil {
			return 0, err
		}
		switch L.Type(2) {
		case lua.TypeNumber:
			if !directionalOnly {
				f, _ := L.ToNumber(2)
				return 0, b.SetImpairment(op, kind, f)
			}
		case lua.TypeTable:
			from, err := vmField(L, 2, op, "from")
			if err != nil {
				return 0, err
			}
			to, err := vmField(L, 2, op, "to")
			if err != nil {
				return 0, err
			}
			v, err := numField(L, 2, op, key)
			if err != nil {
				return 0, err
			}
			return 0, b.SetPairImpairment(op, from, to, kind, v)
		}
		if directionalOnly {
			return 0, fmt.Errorf("bridge:%s: expected a table {from=, to=, %s=}, got %s", op, key, L.TypeName(2))
		}
		return 0, fmt.Errorf(lab.ErrFmtRuleArgType, op, L.TypeName(2))
	}
}

// twoVMs reads (a, b) or ({from=a, to=b}); directional reports the table form.
func twoVMs(L *lua.Thread, op string) (any, any, bool, error) {
	if L.Type(2) == lua.TypeTable {
		if _, _, ok := L.ToObject(2); !ok {
			from, err := vmField(L, 2, op, "from")
			if err != nil {
				return nil, nil, false, err
			}
			to, err := vmField(L, 2, op, "to")
			return from, to, true, err
		}
	}
	a, err := attachTarget(L, 2)
	if err != nil {
		return nil, nil, false, err
	}
	c, err := attachTarget(L, 3)
	return a, c, false, err
}

func (a *API) bridgeClass() lua.Class {
	bridgeOp := func(name string, body func(L *lua.Thread, b *lab.Bridge) (int, error)) method {
		return func(L *lua.Thread) (int, error) {
			b, err := self[*lab.Bridge](L, "bridge:"+name)
			if err != nil {
				return 0, err
			}
			return body(L, b)
		}
	}
	oneVM := func(name string, body func(L *lua.Thread, b *lab.Bridge, x any) (int, error)) method {
		return bridgeOp(name, func(L *lua.Thread, b *lab.Bridge) (int, error) {
			x, err := attachTarget(L, 2)
			if err != nil {
				return 0, err
			}
			return body(L, b, x)
		})
	}
	ms := map[string]method{
		"attach": bridgeOp("attach", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			var targets []any
			if _, _, isObj := L.ToObject(2); L.Type(2) == lua.TypeTable && !isObj {
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
			if err := b.Attach(L.Context(), targets...); err != nil {
				return 0, err
			}
			L.PushValue(1)
			return 1, nil
		}),
		"detach": oneVM("detach", func(L *lua.Thread, b *lab.Bridge, x any) (int, error) {
			return 0, b.Detach(L.Context(), x)
		}),
		"members": bridgeOp("members", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			PushGo(L, b.Members())
			return 1, nil
		}),
		"name": bridgeOp("name", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			L.PushString(b.Name())
			return 1, nil
		}),
		"close": bridgeOp("close", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			_ = b.Close(L.Context())
			return 0, nil
		}),
		"partition": bridgeOp("partition", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			x, y, directional, err := twoVMs(L, "partition")
			if err != nil {
				return 0, err
			}
			if directional {
				return 0, b.PartitionDirectional(x, y)
			}
			return 0, b.Partition(x, y)
		}),
		"unpartition": bridgeOp("unpartition", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			x, y, directional, err := twoVMs(L, "unpartition")
			if err != nil {
				return 0, err
			}
			return 0, b.Unpartition(x, y, directional)
		}),
		"partition_all": bridgeOp("partition_all", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			b.PartitionAll()
			return 0, nil
		}),
		"restore_all": bridgeOp("restore_all", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			b.RestoreAll()
			return 0, nil
		}),
		"is_partitioned": bridgeOp("is_partitioned", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			x, y, _, err := twoVMs(L, "is_partitioned")
			if err != nil {
				return 0, err
			}
			on, err := b.IsPartitioned(x, y)
			L.PushBoolean(on)
			return 1, err
		}),
		"isolate": oneVM("isolate", func(L *lua.Thread, b *lab.Bridge, x any) (int, error) {
			return 0, b.SetIsolated("isolate", x, true)
		}),
		"unisolate": oneVM("unisolate", func(L *lua.Thread, b *lab.Bridge, x any) (int, error) {
			return 0, b.SetIsolated("unisolate", x, false)
		}),
		"is_isolated": oneVM("is_isolated", func(L *lua.Thread, b *lab.Bridge, x any) (int, error) {
			on, err := b.IsIsolated(x)
			L.PushBoolean(on)
			return 1, err
		}),
		"add_latency":             setImpairment("add_latency", "ms", lab.Latency, false),
		"drop_rate":               setImpairment("drop_rate", "p", lab.Drop, false),
		"bandwidth_limit":         setImpairment("bandwidth_limit", "bps", lab.Bandwidth, false),
		"add_directional_latency": setImpairment("add_directional_latency", "ms", lab.Latency, true),
		"directional_drop_rate":   setImpairment("directional_drop_rate", "p", lab.Drop, true),
		"reset": bridgeOp("reset", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			b.Reset()
			return 0, nil
		}),
		"latency_ms": bridgeOp("latency_ms", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			L.PushNumber(b.Impairment().LatencyMs)
			return 1, nil
		}),
		"drop_rate_pct": bridgeOp("drop_rate_pct", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			L.PushNumber(b.Impairment().DropPct)
			return 1, nil
		}),
		"bandwidth_bps": bridgeOp("bandwidth_bps", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			L.PushInteger(int64(b.Impairment().BandwidthBps))
			return 1, nil
		}),
		"route": bridgeOp("route", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			names, err := routeNames(L)
			if err != nil {
				return 0, err
			}
			b.Route(names)
			return 0, nil
		}),
		"routes": bridgeOp("routes", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			PushGo(L, b.Routes())
			return 1, nil
		}),
		"enable_uplink": bridgeOp("enable_uplink", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			return 0, b.EnableUplink(L.Context())
		}),
		"disable_uplink": bridgeOp("disable_uplink", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			return 0, b.DisableUplink(L.Context())
		}),
		"nic": oneVM("nic", func(L *lua.Thread, b *lab.Bridge, x any) (int, error) {
			n, err := b.NIC(x)
			if err != nil {
				return 0, err
			}
			L.PushObject(n, classNic)
			return 1, nil
		}),
		"capture": bridgeOp("capture", func(L *lua.Thread, b *lab.Bridge) (int, error) {
			c, err := b.Switch().Capture()
			if err != nil {
				return 0, fmt.Errorf("bridge:capture: bridge `%s` is closed", b.Name())
			}
			a.pushCapture(L, &streamObj{bridge: b, kind: kindBridgeCapture, detail: "bridge=" + b.Name(),
				src: &captureSource{c: c, sw: b.Switch()}})
			return 1, nil
		}),
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

// routeNames reads route's argument: a bridge, a name or an array of them.
func routeNames(L *lua.Thread) ([]string, error) {
	one := func(i int) (string, error) {
		if L.Type(i) == lua.TypeString {
			s, _ := L.ToString(i)
			return s, nil
		}
		if v, _, ok := L.ToObject(i); ok {
			if b, ok := v.(*lab.Bridge); ok {
				return b.Name(), nil
			}
		}
		return "", fmt.Errorf("bridge:route: expected a bridge, a bridge name or an array of them, got %s", L.TypeName(i))
	}
	if _, _, isObj := L.ToObject(2); L.Type(2) == lua.TypeTable && !isObj {
		var out []string
		for k := int64(1); L.RawGetI(2, k) != lua.TypeNil; k++ {
			s, err := one(L.GetTop())
			L.Pop(1)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		L.Pop(1)
		return out, nil
	}
	s, err := one(2)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

func (a *API) nicClass() lua.Class {
	nicOp := func(name string, body func(L *lua.Thread, n *lab.NIC) (int, error)) method {
		return func(L *lua.Thread) (int, error) {
			n, err := self[*lab.NIC](L, "nic:"+name)
			if err != nil {
				return 0, err
			}
			return body(L, n)
		}
	}
	ms := map[string]method{
		"counters": nicOp("counters", func(L *lua.Thread, n *lab.NIC) (int, error) {
			c := n.Counters()
			L.NewTable(0, 6)
			for _, kv := range []struct {
				k string
				v uint64
			}{{"rx_bytes", c.RxBytes}, {"tx_bytes", c.TxBytes}, {"rx_packets", c.RxPackets}, {"tx_packets", c.TxPackets}, {"errors", c.Errors}, {"dropped", c.Dropped}} {
				L.PushInteger(int64(kv.v))
				L.RawSetField(-2, kv.k)
			}
			return 1, nil
		}),
		"capture": nicOp("capture", func(L *lua.Thread, n *lab.NIC) (int, error) {
			c, err := n.Capture()
			if err != nil {
				return 0, err
			}
			a.pushCapture(L, &streamObj{vm: n.VM(), bridge: n.Bridge(), kind: kindNicCapture,
				detail: fmt.Sprintf("vm=%s, bridge=%s", n.VMName(), n.Bridge().Name()),
				src:    &captureSource{c: c, sw: n.Bridge().Switch()}})
			return 1, nil
		}),
		"disconnect": nicOp("disconnect", func(L *lua.Thread, n *lab.NIC) (int, error) {
			return 0, n.SetConnected(L.Context(), false)
		}),
		"reconnect": nicOp("reconnect", func(L *lua.Thread, n *lab.NIC) (int, error) {
			return 0, n.SetConnected(L.Context(), true)
		}),
		"vm_name": nicOp("vm_name", func(L *lua.Thread, n *lab.NIC) (int, error) {
			L.PushString(n.VMName())
			return 1, nil
		}),
		"bridge": nicOp("bridge", func(L *lua.Thread, n *lab.NIC) (int, error) {
			L.PushString(n.Bridge().Name())
			return 1, nil
		}),
		"mac": nicOp("mac", func(L *lua.Thread, n *lab.NIC) (int, error) {
			L.PushString(n.MAC())
			return 1, nil
		}),
		"ip": nicOp("ip", func(L *lua.Thread, n *lab.NIC) (int, error) {
			if ip, ok := n.IP(); ok {
				L.PushString(ip)
			} else {
				L.PushNil()
			}
			return 1, nil
		}),
		"ifname": nicOp("ifname", func(L *lua.Thread, n *lab.NIC) (int, error) {
			if s := n.Ifname(); s != "" {
				L.PushString(s)
			} else {
				L.PushNil()
			}
			return 1, nil
		}),
		"is_connected": nicOp("is_connected", func(L *lua.Thread, n *lab.NIC) (int, error) {
			L.PushBoolean(n.IsConnected())
			return 1, nil
		}),
	}
	return lua.Class{
		Name:    classNic,
		Methods: toFunctions(ms),
		Meta: map[string]lua.Function{
			"__eq": eq,
			"__tostring": func(L *lua.Thread) (int, error) {
				n, err := self[*lab.NIC](L, "nic")
				if err != nil {
					return 0, err
				}
				L.PushString(fmt.Sprintf("nic(vm=%s bridge=%s mac=%s)", n.VMName(), n.Bridge().Name(), n.MAC()))
				return 1, nil
			},
		},
	}
}

// pushCapture registers and pushes a Capture stream.
func (a *API) pushCapture(L *lua.Thread, s *streamObj) {
	s.class = classCapture
	s.prefix = "capture"
	s.closedMsg = errCaptureClosed
	a.newStream(L, s)
}

// captureSource is a Capture stream's source: pcap chunks from the switch.
type captureSource struct {
	c  *netsim.Capture
	sw *netsim.Switch
}

func (s *captureSource) read(ctx context.Context) ([]byte, error) { return s.c.Read(ctx) }

func (s *captureSource) poll(ctx context.Context) ([]byte, error) {
	chunk, eof := s.c.Poll()
	switch {
	case chunk != nil:
		return chunk, nil
	case eof:
		return nil, io.EOF
	}
	return nil, errTimedOut
}

func (s *captureSource) live() bool { return true }

func (s *captureSource) close() { s.c.Close(s.sw) }
