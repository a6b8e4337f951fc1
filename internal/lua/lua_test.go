package lua

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"
)

func newState(t *testing.T) *State {
	t.Helper()
	s, err := NewState()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// eval runs code that returns one value and converts it with tostring.
func eval(t *testing.T, s *State, code string) string {
	t.Helper()
	L := s.Main()
	if err := L.Load(code, "=eval"); err != nil {
		t.Fatalf("load %q: %v", code, err)
	}
	if err := L.PCall(0, 1, false); err != nil {
		t.Fatalf("run %q: %v", code, err)
	}
	v, _ := L.ToStringMeta(-1)
	L.Pop(1)
	return v
}

func TestLua54Semantics(t *testing.T) {
	s := newState(t)
	cases := []struct{ code, want string }{
		{"return math.type(1)", "integer"},
		{"return math.type(1.0)", "float"},
		{"return math.type('1')", "nil"},
		{"return 3 // 2", "1"},
		{"return 3.0 // 2", "1.0"},
		{"return -7 // 2", "-4"},
		{"return 7 / 2", "3.5"},
		{"return 1 == 1.0", "true"},
		{"return math.maxinteger + 1 == math.mininteger", "true"},
		{"return math.mininteger - 1", "9223372036854775807"},
		{"return 0xFF & 0x0F | 0x100 ~ 0x1", "271"},
		{`return select(2, xpcall(error, function(m) return "h:" .. m end, "e"))`, "h:e"},
		{"return coroutine.wrap(function() local ok, v = pcall(coroutine.yield, 7) return v end)()", "7"},
		{"return ~0", "-1"},
		{"return 1 << 63", "-9223372036854775808"},
		{"return 1 << 64", "0"},
		{"return -1 >> 1", "9223372036854775807"},
		{"return 0xFFFFFFFFFFFFFFFF", "-1"},
		{"return string.pack('<i4', 258):byte(1, -1)", "2"},
		{"return #string.pack('<I8 z', 1, 'ab')", "11"},
		{"return string.unpack('<I2', '\\1\\2')", "513"},
		{"return select(2, string.unpack('<i8', string.pack('<i8', -5)))", "9"},
		{"return string.unpack('<i8', string.pack('<i8', math.mininteger))", "-9223372036854775808"},
		{"return tostring(2^53)", "9.007199254741e+15"},
		{"return utf8.char(228)", "ä"},
		{"return ('%q'):format('a\\0b')", `"a\0b"`},
	}
	for _, c := range cases {
		if got := eval(t, s, c.code); got != c.want {
			t.Errorf("%s = %q, want %q", c.code, got, c.want)
		}
	}
}

func TestGoFunctionArgumentsAndResults(t *testing.T) {
	s := newState(t)
	L := s.Main()
	L.Register("add", func(L *Thread) (int, error) {
		a, ok1 := L.ToInteger(1)
		b, ok2 := L.ToInteger(2)
		if !ok1 || !ok2 {
			return 0, errors.New("add: integers expected")
		}
		L.PushInteger(a + b)
		L.PushString("x\x00y")
		return 2, nil
	})
	if got := eval(t, s, "local a, b = add(2, 3); return a .. #b .. math.type(a)"); got != "53integer" {
		t.Fatalf("got %q", got)
	}
	if got := eval(t, s, "return add(math.maxinteger, 1) == math.mininteger"); got != "true" {
		t.Fatalf("wraparound through Go: %q", got)
	}
}

func TestPcallCatchesGoErrorsAndPanics(t *testing.T) {
	s := newState(t)
	L := s.Main()
	L.Register("fail", func(L *Thread) (int, error) { return 0, errors.New("vm:run: boom") })
	L.Register("explode", func(L *Thread) (int, error) { panic("kaput") })
	L.Register("raise_table", func(L *Thread) (int, error) {
		L.NewTable(0, 1)
		L.PushString("sentinel")
		L.RawSetField(-2, "kind")
		return 0, Raise()
	})
	if got := eval(t, s, "local ok, e = pcall(fail); return tostring(ok) .. '|' .. e"); got != "false|vm:run: boom" {
		t.Fatalf("got %q", got)
	}
	if got := eval(t, s, "local ok, e = pcall(explode); return e"); !strings.Contains(got, "go panic: kaput") {
		t.Fatalf("panic not converted: %q", got)
	}
	if got := eval(t, s, "local ok, e = pcall(raise_table); return e.kind"); got != "sentinel" {
		t.Fatalf("table error value: %q", got)
	}
	// An uncaught Go error surfaces from PCall as *Error.
	err := L.DoString("fail()", "=chunk")
	var le *Error
	if !errors.As(err, &le) || le.Message != "vm:run: boom" {
		t.Fatalf("uncaught error = %v", err)
	}
	// The state is still usable after errors.
	if got := eval(t, s, "return 1 + 1"); got != "2" {
		t.Fatal("state broken after errors")
	}
}

func TestCoroutinesCallGoAndYieldFromGo(t *testing.T) {
	s := newState(t)
	L := s.Main()
	calls := 0
	L.Register("count", func(L *Thread) (int, error) {
		calls++
		L.PushInteger(int64(calls))
		return 1, nil
	})
	L.Register("pause", func(L *Thread) (int, error) {
		if !L.IsYieldable() {
			return 0, errors.New("pause: not in a coroutine")
		}
		L.PushString("paused")
		return 0, Yield(1)
	})
	code := `
		local co = coroutine.wrap(function()
			local a = count()
			local r = pause()
			return a + count(), r
		end)
		local y = co()
		local sum = co()
		return y .. sum
	`
	if got := eval(t, s, code); got != "paused3" {
		t.Fatalf("got %q", got)
	}
	if got := eval(t, s, "local ok, e = pcall(pause); return e"); got != "pause: not in a coroutine" {
		t.Fatalf("got %q", got)
	}
}

type widget struct{ name string }

func TestUserdataClasses(t *testing.T) {
	s := newState(t)
	L := s.Main()
	err := L.DefineClass(Class{
		Name: "Widget",
		Methods: map[string]Function{
			"name": func(L *Thread) (int, error) {
				v, _, ok := L.ToObject(1)
				if !ok {
					return 0, errors.New("widget:name: bad self")
				}
				L.PushString(v.(*widget).name)
				return 1, nil
			},
		},
		Meta: map[string]Function{
			"__tostring": func(L *Thread) (int, error) {
				v, _, _ := L.ToObject(1)
				L.PushString("widget(" + v.(*widget).name + ")")
				return 1, nil
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	L.Register("new_widget", func(L *Thread) (int, error) {
		n, _ := L.ToString(1)
		L.PushObject(&widget{name: n}, "Widget")
		return 1, nil
	})
	if got := eval(t, s, "local w = new_widget('a'); return w:name() .. ' ' .. tostring(w)"); got != "a widget(a)" {
		t.Fatalf("got %q", got)
	}
	// __name gives error messages and TypeName the class.
	if got := eval(t, s, "local ok, e = pcall(function() return new_widget('b') + 1 end); return e"); !strings.Contains(got, "Widget") {
		t.Fatalf("__name not used: %q", got)
	}
	// __gc releases the Go objects.
	base := s.ObjectCount()
	if err := L.DoString("for i = 1, 1000 do new_widget('x') end collectgarbage() collectgarbage()", "=gc"); err != nil {
		t.Fatal(err)
	}
	if n := s.ObjectCount(); n > base {
		t.Fatalf("objects leaked: %d > %d", n, base)
	}
	// Foreign userdata is not mistaken for ours.
	L.PushObject(&widget{"c"}, "Widget")
	if _, class, ok := L.ToObject(-1); !ok || class != "Widget" {
		t.Fatalf("ToObject = %q %v", class, ok)
	}
	L.Pop(1)
	if err := L.Load("return io.stdout", "=x"); err != nil {
		t.Fatal(err)
	}
	if err := L.PCall(0, 1, false); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := L.ToObject(-1); ok {
		t.Fatal("io.stdout accepted as a Provium object")
	}
	L.Pop(1)
}

func TestInterruptStopsRunawayLoopEvenUnderPcall(t *testing.T) {
	s := newState(t)
	L := s.Main()
	go func() {
		time.Sleep(50 * time.Millisecond)
		s.Interrupt("test timed out after 50ms")
	}()
	err := L.DoString("while true do pcall(function() while true do end end) end", "=loop")
	if err == nil || !strings.Contains(err.Error(), "test timed out after 50ms") {
		t.Fatalf("err = %v", err)
	}
	s.ClearInterrupt()
	if got := eval(t, s, "return 'alive'"); got != "alive" {
		t.Fatal("state unusable after interrupt")
	}
}

func TestSyntaxErrorIsReportedNotRaised(t *testing.T) {
	s := newState(t)
	err := s.Main().Load("return +", "@bad.test.lua")
	var le *Error
	if !errors.As(err, &le) || le.Status != StatusSyntax || !strings.Contains(le.Message, "bad.test.lua:1:") {
		t.Fatalf("err = %#v", err)
	}
}

func TestGetFieldMetamethodErrorIsCaught(t *testing.T) {
	s := newState(t)
	L := s.Main()
	if err := L.DoString("t = setmetatable({}, {__index = function() error('nope') end})", "=x"); err != nil {
		t.Fatal(err)
	}
	L.GetGlobal("t")
	if err := L.GetField(-1, "k"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("err = %v", err)
	}
	if L.GetTop() != 1 {
		t.Fatalf("stack not balanced: %d", L.GetTop())
	}
}

func TestStackFrames(t *testing.T) {
	s := newState(t)
	L := s.Main()
	var frames []Frame
	L.Register("here", func(L *Thread) (int, error) {
		frames = L.Stack()
		return 0, nil
	})
	if err := L.DoString("local function f()\n here()\nend\nf()", "@a.test.lua"); err != nil {
		t.Fatal(err)
	}
	if len(frames) < 2 || frames[0] != (Frame{"a.test.lua", 2}) || frames[1] != (Frame{"a.test.lua", 4}) {
		t.Fatalf("frames = %+v", frames)
	}
}

func TestNoStateLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 200; i++ {
		s, err := NewState()
		if err != nil {
			t.Fatal(err)
		}
		s.Main().Register("f", func(L *Thread) (int, error) { return 0, nil })
		if err := s.Main().DoString("for i=1,10 do f() end", "=x"); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if n := s.ObjectCount(); n != 0 {
			t.Fatalf("objects after close: %d", n)
		}
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("goroutines grew: %d -> %d", before, after)
	}
}

func TestInterruptAfterCloseIsHarmless(t *testing.T) {
	for i := 0; i < 50; i++ {
		s, err := NewState()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			s.Interrupt("late watchdog")
			s.ClearInterrupt()
			close(done)
		}()
		s.Close()
		<-done
		s.Interrupt("after close")
	}
}
