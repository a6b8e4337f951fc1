package lab

import (
	"errors"
	"testing"
)

// TestTransitionTable checks every (op, state) pair against the spec's table
// written out independently here.
func TestTransitionTable(t *testing.T) {
	type want struct {
		ok bool
		to State
	}
	all := []State{Created, Booted, Paused, Shutdown, Dead}
	expect := map[Op]map[State]want{
		OpBoot:        {Created: {true, Booted}, Shutdown: {true, Booted}, Dead: {true, Booted}},
		OpPause:       {Booted: {true, Paused}},
		OpResume:      {Paused: {true, Booted}},
		OpShutdown:    {Created: {true, Shutdown}, Booted: {true, Shutdown}, Paused: {true, Shutdown}, Shutdown: {true, Shutdown}, Dead: {true, Shutdown}},
		OpReset:       {Booted: {true, Booted}},
		OpPowerButton: {Booted: {true, Booted}},
		OpWakeup:      {Booted: {true, Booted}},
		OpSnapshot:    {Booted: {true, Booted}, Paused: {true, Paused}},
		OpRestore:     {Created: {true, Booted}, Shutdown: {true, Booted}, Dead: {true, Booted}},
		OpClose:       {Created: {true, Shutdown}, Booted: {true, Shutdown}, Paused: {true, Shutdown}, Shutdown: {true, Shutdown}, Dead: {true, Shutdown}},
		OpGuest:       {Booted: {true, Booted}},
		OpPoweroff:    {Booted: {true, Shutdown}, Paused: {true, Shutdown}},
		OpCrash:       {Booted: {true, Dead}, Paused: {true, Dead}},
	}
	if len(expect) != len(moves) {
		t.Fatalf("table has %d ops, test expects %d", len(moves), len(expect))
	}
	for op, rows := range expect {
		for _, from := range all {
			w := rows[from]
			to, err := transition(op, string(op), "a", from)
			if w.ok {
				if err != nil || to != w.to {
					t.Errorf("%s from %s = (%s, %v), want %s", op, from, to, err, w.to)
				}
				continue
			}
			var wse *WrongStateError
			if !errors.As(err, &wse) || to != from {
				t.Errorf("%s from %s = (%s, %v), want WrongStateError and unchanged state", op, from, to, err)
			}
		}
	}
}

func TestWrongStateTexts(t *testing.T) {
	cases := []struct {
		op     Op
		method string
		from   State
		want   string
	}{
		{OpPause, "pause", Created, "vm:pause: vm `a` is created (needs booted)"},
		{OpSnapshot, "snapshot", Shutdown, "vm:snapshot: vm `a` is shutdown (needs booted or paused)"},
		{OpBoot, "boot", Booted, "vm:boot: vm `a` is booted (needs created, shutdown or dead)"},
		{OpGuest, "read_file", Paused, "vm:read_file: vm `a` is paused (needs booted)"},
	}
	for _, c := range cases {
		_, err := transition(c.op, c.method, "a", c.from)
		if err == nil || err.Error() != c.want {
			t.Errorf("got %v\nwant %s", err, c.want)
		}
	}
}

func TestStateString(t *testing.T) {
	want := map[State]string{Created: "created", Booted: "booted", Paused: "paused", Shutdown: "shutdown", Dead: "dead", State(9): "state(9)"}
	for s, w := range want {
		if s.String() != w {
			t.Errorf("State(%d).String() = %q, want %q", int(s), s.String(), w)
		}
	}
}
