package luaapi

import (
	"fmt"
	"math"
	"time"

	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
)

const classDisk = "Disk"

// vmDisk is vm:disk(id).
func (a *API) vmDisk(L *lua.Thread) (int, error) {
	vm, err := self[*lab.VM](L, "vm:disk")
	if err != nil {
		return 0, err
	}
	id, err := checkString(L, 2, "vm:disk")
	if err != nil {
		return 0, err
	}
	d, err := vm.Disk(id)
	if err != nil {
		return 0, err
	}
	L.PushObject(d, classDisk)
	return 1, nil
}

// vmAttachDisk is vm:attach_disk(opts?).
func (a *API) vmAttachDisk(L *lua.Thread) (int, error) {
	vm, err := self[*lab.VM](L, "vm:attach_disk")
	if err != nil {
		return 0, err
	}
	t := map[string]any{}
	if !L.IsNoneOrNil(2) {
		if L.Type(2) != lua.TypeTable {
			return 0, fmt.Errorf("vm:attach_disk: expected an options table, got %s", L.TypeName(2))
		}
		v, err := ToGo(L, 2)
		if err != nil {
			return 0, fmt.Errorf("vm:attach_disk: %w", err)
		}
		switch x := v.(type) {
		case map[string]any:
			t = x
		case []any:
			if len(x) != 0 {
				return 0, fmt.Errorf("vm:attach_disk: expected a table with string keys")
			}
		}
	}
	o, err := lab.ParseAttachOpts(vm.Name(), t)
	if err != nil {
		return 0, err
	}
	d, err := vm.AttachDisk(L.Context(), o)
	if err != nil {
		return 0, ctxErr(L.Context(), err)
	}
	L.PushObject(d, classDisk)
	return 1, nil
}

// uintArg reads a non-negative integer argument (integral floats too).
func uintArg(L *lua.Thread, i int, site, name string) (uint64, error) {
	if L.Type(i) == lua.TypeNumber {
		if L.IsInteger(i) {
			n, _ := L.ToInteger(i)
			if n >= 0 {
				return uint64(n), nil
			}
		} else if f, _ := L.ToNumber(i); f >= 0 && f == math.Trunc(f) && f < 1<<63 {
			return uint64(f), nil
		}
	}
	v, _ := L.ToStringMeta(i)
	return 0, fmt.Errorf("%s: %s must be a non-negative integer, got %s", site, name, v)
}

func diskMethod(name string, f func(L *lua.Thread, d *lab.Disk, site string) (int, error)) lua.Function {
	site := "disk:" + name
	return func(L *lua.Thread) (int, error) {
		d, err := self[*lab.Disk](L, site)
		if err != nil {
			return 0, err
		}
		return f(L, d, site)
	}
}

func (a *API) diskClass() lua.Class {
	pushNothing := func(err error) (int, error) { return 0, err }
	return lua.Class{
		Name: classDisk,
		Methods: map[string]lua.Function{
			"id": diskMethod("id", func(L *lua.Thread, d *lab.Disk, _ string) (int, error) {
				L.PushString(d.ID())
				return 1, nil
			}),
			"size": diskMethod("size", func(L *lua.Thread, d *lab.Disk, _ string) (int, error) {
				L.PushInteger(d.Size())
				return 1, nil
			}),
			"is_detached": diskMethod("is_detached", func(L *lua.Thread, d *lab.Disk, _ string) (int, error) {
				L.PushBoolean(d.IsDetached())
				return 1, nil
			}),
			"read_sectors": diskMethod("read_sectors", func(L *lua.Thread, d *lab.Disk, site string) (int, error) {
				sector, err := uintArg(L, 2, site, "sector")
				if err != nil {
					return 0, err
				}
				n, err := uintArg(L, 3, site, "n")
				if err != nil {
					return 0, err
				}
				if n > 1<<16 {
					return 0, fmt.Errorf("%s: n must be at most 65536 sectors (32 MiB), got %d", site, n)
				}
				b, err := d.ReadSectors(L.Context(), sector, n)
				if err != nil {
					return 0, ctxErr(L.Context(), err)
				}
				L.PushString(string(b))
				return 1, nil
			}),
			"write_sectors": diskMethod("write_sectors", func(L *lua.Thread, d *lab.Disk, site string) (int, error) {
				sector, err := uintArg(L, 2, site, "sector")
				if err != nil {
					return 0, err
				}
				if L.Type(3) != lua.TypeString {
					return 0, fmt.Errorf("%s: data must be a string, got %s", site, L.TypeName(3))
				}
				data, _ := L.ToString(3)
				return pushNothing(ctxErr(L.Context(), d.WriteSectors(L.Context(), sector, []byte(data))))
			}),
			"fault_inject": diskMethod("fault_inject", func(L *lua.Thread, d *lab.Disk, _ string) (int, error) {
				mode, _ := L.ToStringMeta(2)
				return pushNothing(d.FaultInject(mode))
			}),
			"clear_faults": diskMethod("clear_faults", func(L *lua.Thread, d *lab.Disk, _ string) (int, error) {
				d.Control().ClearFaults()
				return 0, nil
			}),
			"active_faults": diskMethod("active_faults", func(L *lua.Thread, d *lab.Disk, _ string) (int, error) {
				fs := d.Control().Faults()
				L.NewTable(len(fs), 0)
				for i, f := range fs {
					L.PushString(f)
					L.RawSetI(-2, int64(i+1))
				}
				return 1, nil
			}),
			"detach": diskMethod("detach", func(L *lua.Thread, d *lab.Disk, _ string) (int, error) {
				return pushNothing(ctxErr(L.Context(), d.Detach(L.Context())))
			}),
			"power_cut": diskMethod("power_cut", func(L *lua.Thread, d *lab.Disk, _ string) (int, error) {
				n, err := d.PowerCut()
				if err != nil {
					return 0, err
				}
				L.PushInteger(int64(n))
				return 1, nil
			}),
			"fail_reads": mediatedMethod("fail_reads", func(L *lua.Thread, d *lab.Disk, _ string) error {
				d.Control().FailReads()
				return nil
			}),
			"fail_writes": mediatedMethod("fail_writes", func(L *lua.Thread, d *lab.Disk, _ string) error {
				d.Control().FailWrites()
				return nil
			}),
			"fail_after": mediatedMethod("fail_after", func(L *lua.Thread, d *lab.Disk, site string) error {
				n, err := uintArg(L, 2, site, "n")
				if err != nil {
					return err
				}
				d.Control().FailAfter(n)
				return nil
			}),
			"fail_range": mediatedMethod("fail_range", func(L *lua.Thread, d *lab.Disk, site string) error {
				sector, err := uintArg(L, 2, site, "sector")
				if err != nil {
					return err
				}
				count, err := uintArg(L, 3, site, "count")
				if err != nil {
					return err
				}
				if err := d.Control().FailRange(sector, count); err != nil {
					return fmt.Errorf("%s: %v", site, err)
				}
				return nil
			}),
			"delay": mediatedMethod("delay", func(L *lua.Thread, d *lab.Disk, site string) error {
				ms, err := uintArg(L, 2, site, "ms")
				if err != nil {
					return err
				}
				if ms > uint64(time.Hour/time.Millisecond) {
					return fmt.Errorf("%s: ms must be at most 3600000 (1 h), got %d", site, ms)
				}
				d.Control().SetDelay(time.Duration(ms) * time.Millisecond)
				return nil
			}),
			"clear_policy": mediatedMethod("clear_policy", func(L *lua.Thread, d *lab.Disk, _ string) error {
				d.Control().ClearPolicy()
				return nil
			}),
			"fault_policy": diskMethod("fault_policy", func(L *lua.Thread, d *lab.Disk, site string) (int, error) {
				exp, err := d.Mediated("fault_policy")
				if err != nil {
					return 0, err
				}
				p := d.Control().Policy()
				L.NewTable(0, 6)
				L.PushBoolean(p.FailReads)
				L.RawSetField(-2, "fail_reads")
				L.PushBoolean(p.FailWrites)
				L.RawSetField(-2, "fail_writes")
				if p.FailAfter != nil {
					L.PushInteger(int64(*p.FailAfter))
					L.RawSetField(-2, "fail_after")
				}
				L.NewTable(len(p.FailRanges), 0)
				for i, r := range p.FailRanges {
					L.NewTable(0, 2)
					L.PushInteger(int64(r.Sector))
					L.RawSetField(-2, "sector")
					L.PushInteger(int64(r.Count))
					L.RawSetField(-2, "count")
					L.RawSetI(-2, int64(i+1))
				}
				L.RawSetField(-2, "fail_ranges")
				L.PushInteger(p.Delay.Milliseconds())
				L.RawSetField(-2, "delay_ms")
				unflushed := 0
				if exp != nil {
					unflushed = exp.Unflushed()
				}
				L.PushInteger(int64(unflushed))
				L.RawSetField(-2, "unflushed")
				return 1, nil
			}),
		},
		Meta: map[string]lua.Function{
			"__eq": eq,
			"__tostring": func(L *lua.Thread) (int, error) {
				d, err := self[*lab.Disk](L, "disk")
				if err != nil {
					return 0, err
				}
				L.PushString(fmt.Sprintf("disk(%s vm=%s)", d.ID(), d.VM().Name()))
				return 1, nil
			},
		},
	}
}

// mediatedMethod is a §15.2 method: it raises on a plain disk.
func mediatedMethod(name string, f func(L *lua.Thread, d *lab.Disk, site string) error) lua.Function {
	return diskMethod(name, func(L *lua.Thread, d *lab.Disk, site string) (int, error) {
		if _, err := d.Mediated(name); err != nil {
			return 0, err
		}
		return 0, f(L, d, site)
	})
}
