package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/provium/provium/internal/guest"
	"github.com/provium/provium/internal/lab"
	"github.com/provium/provium/internal/lua"
	"github.com/provium/provium/internal/luaapi"
)

// b3LuaScript times guest operations as a test file makes them: through
// the Lua binding, one at a time, each iteration timed on the host around
// the Lua call (bench_begin(name, budget_ms?), bench_now() and bench_sample(name, t0)
// are Go functions; an operation with a budget also reports the share of
// its iterations within it). The "poke" is
// the request-serving pattern of peios/integration-tests' NTFE ingest
// helpers (finding K2 of the corpus scan): a worker's blocking call made
// with syscall_async, a request served with vm:syscall poll,
// clock_gettime, write and read, then await.
const b3LuaScript = `
local N, WARMUP = ...
local vm = provium:vm("b3lua", "linux"):boot()
local w = vm:spawn_worker()
local page = string.rep("provium!", 512)
vm:write_file("/tmp/b3l-read", page)
local efd = vm:syscall(290 --[[eventfd2]], 0, 0).ret
assert(efd >= 0, "eventfd2")
local one, eight = string.pack("<I8", 1), string.rep("\0", 8)
local pollfd = string.pack("<i4i2i2", efd, 1 --[[POLLIN]], 0)
local ts = string.rep("\0", 16)
local function check(r, what) if r.ret < 0 then error(what .. ": errno " .. r.errno) end end
local ops = {
  {"vm:syscall(getpid)", function() check(vm:syscall(39), "getpid") end},
  {"worker:syscall(getpid)", function() check(w:syscall(39), "getpid") end},
  {"vm:syscall_async(getpid) + await", function() check(vm:syscall_async(39):await(), "getpid") end},
  {"worker:syscall_async(getpid) + await", function() check(w:syscall_async(39):await(), "getpid") end},
  {"vm:read_file 4 KiB", function() assert(#vm:read_file("/tmp/b3l-read") == #page) end},
  {"vm:write_file 4 KiB", function() vm:write_file("/tmp/b3l-write", page) end},
  {"vm:run(\"true\")", function() assert(vm:run("true").exit_code == 0) end},
  {"worker:run(\"true\")", function() assert(w:run("true").exit_code == 0) end},
  {"poke: 8 calls (K2)", budget_ms = 45, function()
    local p = w:syscall_async(39)
    check(vm:syscall(1 --[[write]], {args = {efd, 0, 8}, bufs = {one}, ptrs = {1}}), "write")
    check(vm:syscall(7 --[[poll]], {args = {0, 1, 0}, bufs = {pollfd}, ptrs = {0}}), "poll")
    check(vm:syscall(228 --[[clock_gettime]], {args = {1, 0}, bufs = {ts}, ptrs = {1}}), "clock_gettime")
    check(vm:syscall(0 --[[read]], {args = {efd, 0, 8}, bufs = {eight}, ptrs = {1}}), "read")
    check(vm:syscall(1 --[[write]], {args = {efd, 0, 8}, bufs = {one}, ptrs = {1}}), "write")
    check(vm:syscall(0 --[[read]], {args = {efd, 0, 8}, bufs = {eight}, ptrs = {1}}), "read")
    check(p:await(), "await")
  end},
}
for _, op in ipairs(ops) do
  local name, fn = op[1], op[2]
  bench_begin(name, op.budget_ms)
  for _ = 1, WARMUP do fn() end
  for _ = 1, N do
    local t0 = bench_now()
    fn()
    bench_sample(name, t0)
  end
end
w:close()
`

// runB3Lua runs script (b3LuaScript or -b3-lua-script) against the Lua API
// (the path a test file takes: binding, lab, agent client); the script
// boots its guest and times each operation n times after warmup
// unmeasured ones.
func runB3Lua(ctx context.Context, env *benchEnv, script string, warmup, n int) ([]opResult, error) {
	be, err := guest.New(guest.Options{Config: env.cfg, ScratchRoot: env.scratch, Accel: env.accel, Seed: 1})
	if err != nil {
		return nil, err
	}
	defer be.Close()
	st, err := lua.NewState()
	if err != nil {
		return nil, err
	}
	defer st.Close()
	st.SetContext(ctx)
	root := lab.NewRoot(lab.Env{Profiles: env.cfg, GuestOS: env.cfg.NamedGuestOS, Backend: be.ForFile("b3lua.test.lua"), File: "b3lua.test.lua"})
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, err := range root.Scope().Close(cctx) {
			fmt.Fprintf(os.Stderr, "B3 (Lua): teardown: %v\n", err)
		}
	}()
	L := st.Main()
	if _, err := luaapi.Install(L, root); err != nil {
		return nil, err
	}
	epoch := time.Now()
	samples := map[string][]float64{}
	budgets := map[string]float64{}
	var order []string
	L.PushFunction(func(L *lua.Thread) (int, error) {
		L.PushNumber(float64(time.Since(epoch).Nanoseconds()) / 1e3)
		return 1, nil
	})
	L.SetGlobal("bench_now")
	L.PushFunction(func(L *lua.Thread) (int, error) {
		name, _ := L.ToString(1)
		if ms, ok := L.ToNumber(2); ok {
			budgets[name] = ms
		}
		fmt.Fprintf(os.Stderr, "B3 (Lua): %s × %d\n", name, n)
		order = append(order, name)
		return 0, nil
	})
	L.SetGlobal("bench_begin")
	L.PushFunction(func(L *lua.Thread) (int, error) {
		now := float64(time.Since(epoch).Nanoseconds()) / 1e3
		name, _ := L.ToString(1)
		t0, _ := L.ToNumber(2)
		samples[name] = append(samples[name], now-t0)
		return 0, nil
	})
	L.SetGlobal("bench_sample")
	fmt.Fprintln(os.Stderr, "B3 (Lua): booting")
	if err := L.Load(script, "=b3lua"); err != nil {
		return nil, err
	}
	L.PushInteger(int64(n))
	L.PushInteger(int64(warmup))
	if err := L.PCall(2, 0, true); err != nil {
		return nil, err
	}
	var out []opResult
	for _, name := range order {
		r := summarize(name, samples[name])
		if ms, ok := budgets[name]; ok {
			r.BudgetMs, r.WithinBudget = ms, withinBudget(samples[name], ms*1e3)
		}
		out = append(out, r)
	}
	return out, nil
}

// withinBudget is the share of samples (µs) at or under budget (µs).
func withinBudget(samples []float64, budget float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	n := 0
	for _, s := range samples {
		if s <= budget {
			n++
		}
	}
	return float64(n) / float64(len(samples))
}
