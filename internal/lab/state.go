package lab

import (
	"fmt"
	"strings"
)

// State is where a VM is in its lifecycle (10-lua-api.md §5.1).
type State int

const (
	Created State = iota
	Booted
	Paused
	Shutdown
	Dead
)

var stateNames = [...]string{
	Created:  "created",
	Booted:   "booted",
	Paused:   "paused",
	Shutdown: "shutdown",
	Dead:     "dead",
}

// String returns the Lua-visible name of the state (`vm:state()`).
func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("state(%d)", int(s))
	}
	return stateNames[s]
}

// Op names a VM method (or an event from the backend) that moves the state
// machine. The value is the Lua method name, so it can appear in messages.
type Op string

const (
	OpBoot        Op = "boot"
	OpPause       Op = "pause"
	OpResume      Op = "resume"
	OpShutdown    Op = "shutdown"
	OpReset       Op = "reset"
	OpPowerButton Op = "power_button"
	OpWakeup      Op = "wakeup"
	OpSnapshot    Op = "snapshot"
	OpRestore     Op = "restore"
	OpClose       Op = "close"
	// OpGuest is any guest operation (run, read_file, syscall, …): it needs a
	// booted VM and leaves the state alone. Callers name the real method in
	// the error through CheckGuestOp.
	OpGuest Op = "guest"
	// OpPoweroff and OpCrash are events, not methods: the guest powered itself
	// off, or QEMU exited without being asked to.
	OpPoweroff Op = "poweroff"
	OpCrash    Op = "crash"
)

// move is one row of the transition table: the states an op may start from and
// the state it leads to. stay means "unchanged" (snapshot, guest ops).
type move struct {
	from []State
	to   State
	stay bool
}

var anyState = []State{Created, Booted, Paused, Shutdown, Dead}

// moves is the one table of allowed transitions. Keep it in the order of the
// spec's table so the two can be compared line by line.
var moves = map[Op]move{
	OpBoot:        {from: []State{Created, Shutdown, Dead}, to: Booted},
	OpPause:       {from: []State{Booted}, to: Paused},
	OpResume:      {from: []State{Paused}, to: Booted},
	OpShutdown:    {from: anyState, to: Shutdown},
	OpReset:       {from: []State{Booted}, to: Booted},
	OpPowerButton: {from: []State{Booted}, stay: true},
	OpWakeup:      {from: []State{Booted}, to: Booted},
	OpSnapshot:    {from: []State{Booted, Paused}, stay: true},
	OpRestore:     {from: []State{Created, Shutdown, Dead}, to: Booted},
	OpClose:       {from: anyState, to: Shutdown},
	OpGuest:       {from: []State{Booted}, stay: true},
	OpPoweroff:    {from: []State{Booted, Paused}, to: Shutdown},
	OpCrash:       {from: []State{Booted, Paused}, to: Dead},
}

// errFmtWrongState is the spec's wrong-state text:
// vm:<method>: vm `<name>` is <state> (needs <allowed>).
const errFmtWrongState = "vm:%s: vm `%s` is %s (needs %s)"

// WrongStateError is returned when a VM method is called in a state its row of
// the transition table does not allow. Callers may branch on it with errors.As.
type WrongStateError struct {
	Method  string
	VM      string
	State   State
	Allowed []State
}

func (e *WrongStateError) Error() string {
	return fmt.Sprintf(errFmtWrongState, e.Method, e.VM, e.State, listStates(e.Allowed))
}

// listStates renders allowed states as English prose in table order:
// "booted", "booted or paused", "created, shutdown or dead".
func listStates(states []State) string {
	names := make([]string, len(states))
	for i, s := range states {
		names[i] = s.String()
	}
	if len(names) <= 1 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// transition is the one transition function: it returns the state op leads to
// from `from`, or a WrongStateError naming method (the Lua method the user
// called, which differs from op only for guest ops).
func transition(op Op, method, vmName string, from State) (State, error) {
	m, ok := moves[op]
	if !ok {
		// A programming error in this package, not a user error.
		panic(fmt.Sprintf("lab: no transition row for op %q", op))
	}
	for _, s := range m.from {
		if s == from {
			if m.stay {
				return from, nil
			}
			return m.to, nil
		}
	}
	return from, &WrongStateError{Method: method, VM: vmName, State: from, Allowed: m.from}
}
