package luajson

import (
	"strings"
	"testing"

	"github.com/provium/provium/internal/lua"
)

func newState(tb testing.TB) *lua.State {
	tb.Helper()
	s, err := lua.NewState()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	Open(s.Main())
	return s
}

// run executes a chunk returning one value and converts it with tostring.
func run(tb testing.TB, s *lua.State, code string) (string, error) {
	tb.Helper()
	L := s.Main()
	if err := L.Load(code, "=test"); err != nil {
		tb.Fatalf("load %q: %v", code, err)
	}
	if err := L.PCall(0, 1, false); err != nil {
		return "", err
	}
	v, _ := L.ToStringMeta(-1)
	L.Pop(1)
	if top := L.GetTop(); top != 0 {
		tb.Fatalf("stack not balanced after %q: top %d", code, top)
	}
	return v, nil
}

type evalCase struct{ code, want string }

func checkAll(t *testing.T, cases []evalCase) {
	t.Helper()
	s := newState(t)
	for _, c := range cases {
		got, err := run(t, s, c.code)
		if err != nil {
			t.Errorf("%s: unexpected error %v", c.code, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s\n got  %s\n want %s", c.code, got, c.want)
		}
	}
}

func checkErrors(t *testing.T, cases []evalCase) {
	t.Helper()
	s := newState(t)
	for _, c := range cases {
		got, err := run(t, s, c.code)
		if err == nil {
			t.Errorf("%s: no error, returned %s", c.code, got)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("%s\n got  error %s\n want error %s", c.code, err, c.want)
		}
	}
}

func TestEncodeScalars(t *testing.T) {
	checkAll(t, []evalCase{
		{`return json.encode(nil)`, `null`},
		{`return json.encode()`, `null`},
		{`return json.encode(true) .. json.encode(false)`, `truefalse`},
		{`return json.encode(0)`, `0`},
		{`return json.encode(-42)`, `-42`},
		{`return json.encode(math.maxinteger)`, `9223372036854775807`},
		{`return json.encode(math.mininteger)`, `-9223372036854775808`},
		{`return json.encode(1.0)`, `1.0`},
		{`return json.encode(-0.0)`, `-0.0`},
		{`return json.encode(0.0)`, `0.0`},
		{`return json.encode(1.5)`, `1.5`},
		{`return json.encode(0.1)`, `0.1`},
		{`return json.encode(1/3)`, `0.3333333333333333`},
		{`return json.encode(1e20)`, `1e20`},
		{`return json.encode(1e15)`, `1000000000000000.0`},
		{`return json.encode(1e16)`, `1e16`},
		{`return json.encode(2^53)`, `9007199254740992.0`},
		{`return json.encode(123456789.5)`, `123456789.5`},
		{`return json.encode(0.0001)`, `0.0001`},
		{`return json.encode(0.00001)`, `0.00001`},
		{`return json.encode(0.000001)`, `1e-6`},
		{`return json.encode(-1.25e-6)`, `-1.25e-6`},
		{`return json.encode(1.5e100)`, `1.5e100`},
		{`return json.encode(-1.5e-300)`, `-1.5e-300`},
		{`return json.encode(5e-324)`, `5e-324`},
		{`return json.encode(1.7976931348623157e308)`, `1.7976931348623157e308`},
		// JSON has no NaN or infinity; upstream writes null.
		{`return json.encode(0/0)`, `null`},
		{`return json.encode({math.huge, -math.huge, x = 0/0})`, `{"1":null,"2":null,"x":null}`},
		{`return json.encode({1, -math.huge})`, `[1,null]`},
		{`return json.encode("")`, `""`},
		{`return json.encode("plain / text")`, `"plain / text"`},
		{`return json.encode("q\"b\\n\nr\rt\tb\bf\f")`, `"q\"b\\n\nr\rt\tb\bf\f"`},
		{`return json.encode("\0\1\31\127")`, "\"\\u0000\\u0001\\u001f\x7f\""},
		{`return json.encode("é€😀\u{FFFD}")`, `"é€😀` + "\uFFFD" + `"`},
	})
}

func TestEncodeTables(t *testing.T) {
	checkAll(t, []evalCase{
		{`return json.encode({})`, `{}`},
		{`return json.encode({1, 2, 3})`, `[1,2,3]`},
		{`return json.encode({"a", 1.5, true, {}})`, `["a",1.5,true,{}]`},
		{`return json.encode({[1] = 1, [3] = 3})`, `[1,null,3]`},
		{`return json.encode({nil, nil, 3})`, `[null,null,3]`},
		{`return json.encode({[2] = {[2] = {}}})`, `[null,[null,{}]]`},
		{`return json.encode({[2.0] = "float key normalised"})`, `[null,"float key normalised"]`},
		{`return json.encode({b = 1, a = 2, A = 3, _ = 4})`, `{"A":3,"_":4,"a":2,"b":1}`},
		{`return json.encode({1, 2, x = 1})`, `{"1":1,"2":2,"x":1}`},
		{`return json.encode({[0] = "z", "one"})`, `{"0":"z","1":"one"}`},
		{`return json.encode({[-1] = true})`, `{"-1":true}`},
		{`return json.encode({[9] = 9, [10] = 10, k = 0, [1.5] = "f"})`, `{"1.5":"f","10":10,"9":9,"k":0}`},
		{`return json.encode({[2^63] = 1, [-math.huge] = 2, [0.1] = 3})`, `{"-inf":2,"0.1":3,"9223372036854775807":1}`},
		{`return json.encode({[true] = 1, [false] = {0}, ["true"] = 2})`, `{"false":[0],"true":2,"true":1}`},
		{`return json.encode({1, [true] = "t"})`, `{"1":1,"true":"t"}`},
		{`return json.encode({[1] = "int", ["1"] = "str"})`, `{"1":"int","1":"str"}`},
		{`return json.encode({["é"] = 1, z = 2, ["Z"] = 3, ["a b"] = 4})`, `{"Z":3,"a b":4,"z":2,"é":1}`},
		{`return json.encode({a = {b = {c = {1, {d = false}}}}})`, `{"a":{"b":{"c":[1,{"d":false}]}}}`},
		{`local s = {1} return json.encode({a = s, b = s, c = {s, s}})`, `{"a":[1],"b":[1],"c":[[1],[1]]}`},
		{`return json.encode(setmetatable({}, {__index = function() return 1 end, __len = function() return 5 end}))`, `{}`},
		{`return json.encode(setmetatable({x = 1}, {__pairs = function() error("no") end}))`, `{"x":1}`},
	})
}

// TestFloatKeyText checks the object key text of float keys: integral ones
// as the integer they convert to (saturating), others in plain notation
// with the shortest digits, as upstream writes them.
func TestFloatKeyText(t *testing.T) {
	s := newState(t)
	for code, want := range map[string]string{
		"0.1": "0.1", "1.5": "1.5", "-2.25": "-2.25", "1/3": "0.3333333333333333",
		"2^51 + 0.5": "2251799813685248.5", "123456789012345.6": "123456789012345.6",
		"1e15 + 0.5": "1000000000000000.5", "1e-5": "0.00001", "0.5e-4": "0.00005",
		"1e-100": "0." + strings.Repeat("0", 99) + "1", "3.14159265358979": "3.14159265358979",
		"0.1 + 0.2": "0.30000000000000004", "2^63": "9223372036854775807", "1e100": "9223372036854775807",
		"-1e100": "-9223372036854775808", "math.huge": "inf", "-math.huge": "-inf",
	} {
		got, err := run(t, s, "return next(json.decode(json.encode({["+code+"] = 1})))")
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("key %s: got %q, want %q", code, got, want)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	checkErrors(t, []evalCase{
		{`return json.encode(print)`, `json.encode: cannot encode function value at $`},
		{`return json.encode({f = print})`, `json.encode: cannot encode function value at $.f`},
		{`return json.encode({a = {1, {b = coroutine.create(print)}}})`, `json.encode: cannot encode thread value at $.a[2].b`},
		{`return json.encode({["a b"] = {io.stdout}})`, `json.encode: cannot encode userdata (FILE*) value at $["a b"][1]`},
		{`return json.encode({[1.5] = {print}})`, `json.encode: cannot encode function value at $[1.5][1]`},
		{`return json.encode({[{}] = 1})`, `json.encode: cannot use table as object key at $`},
		{`return json.encode({[false] = {print}})`, `json.encode: cannot encode function value at $[false][1]`},
		{`return json.encode("ok\xff")`, `json.encode: invalid UTF-8 in string at $`},
		{`return json.encode({s = "\xed\xa0\x80"})`, `json.encode: invalid UTF-8 in string at $.s`},
		{`return json.encode({n = {["k\xc0"] = 1}})`, `json.encode: invalid UTF-8 in object key "k\xc0" at $.n`},
		{`local t = {} t.self = t return json.encode(t)`, `json.encode: table cycle (the table contains itself) at $.self`},
		{`local t = {a = {b = {}}} t.a.b.c = t.a return json.encode(t)`, `json.encode: table cycle (the table contains itself) at $.a.b.c`},
		{`return json.encode({[1e9] = 1})`, `json.encode: array too sparse (largest index 1000000000 but only 1 elements) at $`},
	})
}

// nest builds Lua code returning a chain of n nested tables.
const nestLua = `local function nest(n) local t = {} for _ = 2, n do t = {t} end return t end `

func TestEncodeDepth(t *testing.T) {
	checkAll(t, []evalCase{
		{nestLua + `return #json.encode(nest(1000))`, "2000"},
		{nestLua + `return json.encode({a = nest(11), b = nest(12), c = {nest(20)}})`,
			`{"a":` + strings.Repeat("[", 10) + "{}" + strings.Repeat("]", 10) +
				`,"b":` + strings.Repeat("[", 11) + "{}" + strings.Repeat("]", 11) +
				`,"c":[` + strings.Repeat("[", 19) + "{}" + strings.Repeat("]", 19) + "]}"},
		// Shared (non-cyclic) references at every depth, including parked ones.
		{nestLua + `local s = {1} local t = s for _ = 1, 30 do t = {t, s} end return #json.encode(t)`, "183"},
	})
	checkErrors(t, []evalCase{
		{nestLua + `return json.encode(nest(1001))`, `json.encode: nesting deeper than 1000 levels`},
		// A cycle among tables deeper than those kept on the Lua stack.
		{`local root = {} local t = root local mark for d = 1, 40 do local c = {} t.n = c t = c if d == 25 then mark = c end end
		  t.back = mark return json.encode(root)`,
			`json.encode: table cycle (the table contains itself) at $` + strings.Repeat(".n", 40) + ".back"},
		// A cycle back to a table kept on the stack, from deep down.
		{`local root = {} local t = root for d = 1, 30 do local c = {} t[1] = c t = c end t[1] = root return json.encode(root)`,
			`json.encode: table cycle (the table contains itself) at $` + strings.Repeat("[1]", 31)},
	})
}

func TestDecodeValues(t *testing.T) {
	checkAll(t, []evalCase{
		{`local v = json.decode("1") return math.type(v) .. v`, "integer1"},
		{`local v = json.decode(" -42 ") return math.type(v) .. v`, "integer-42"},
		{`local v = json.decode("-0") return math.type(v) .. v`, "integer0"},
		{`local v = json.decode("1.0") return math.type(v) .. v`, "float1.0"},
		{`local v = json.decode("-0.0") return math.type(v) .. tostring(1/v)`, "float-inf"},
		{`local v = json.decode("1e2") return math.type(v) .. v`, "float100.0"},
		{`local v = json.decode("1E+2") return math.type(v) .. v`, "float100.0"},
		{`local v = json.decode("25e-1") return math.type(v) .. v`, "float2.5"},
		{`local v = json.decode("9223372036854775807") return math.type(v) .. tostring(v == math.maxinteger)`, "integertrue"},
		{`local v = json.decode("9223372036854775808") return math.type(v) .. tostring(v == math.mininteger)`, "integertrue"},
		{`local v = json.decode("18446744073709551615") return math.type(v) .. v`, "integer-1"},
		{`local v = json.decode("18446744073709551614") return math.type(v) .. v`, "integer-2"},
		{`local v = json.decode("18446744073709551616") return math.type(v) .. tostring(v == 2^64)`, "floattrue"},
		{`local v = json.decode("-9223372036854775808") return math.type(v) .. tostring(v == math.mininteger)`, "integertrue"},
		{`local v = json.decode("-9223372036854775809") return math.type(v) .. tostring(v == -2^63)`, "floattrue"},
		{`local v = json.decode("-18446744073709551615") return math.type(v) .. tostring(v == -2^64)`, "floattrue"},
		{`local v = json.decode("1e400") return tostring(v == math.huge)`, "true"},
		{`local v = json.decode("-1e400") return tostring(v == -math.huge)`, "true"},
		{`local v = json.decode("-1e-400") return math.type(v) .. tostring(1/v)`, "float-inf"},
		{`local v = json.decode("123456789012345678901234567890") return math.type(v) .. tostring(v == 1.2345678901234568e29)`, "floattrue"},
		{`return json.decode("true") == true and json.decode("false") == false`, "true"},
		{`return select("#", json.decode("null")) .. tostring(json.decode(" null "))`, "1nil"},
		{`return json.decode('"hello"')`, "hello"},
		{`return json.decode('"q\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\f"') == "q\"b\\s/n\nr\rt\tb\bf\f"`, "true"},
		{`return json.decode('"\\u00e9\\u20AC\\ud83d\\ude00\\u0000x"') == "é€😀\0x"`, "true"},
		{`return json.decode('"é€😀"') == "é€😀"`, "true"},
		{`local t = json.decode("[1, null, 3, null]") local n = 0 for _ in pairs(t) do n = n + 1 end
		  return n .. t[1] .. tostring(t[2]) .. t[3] .. tostring(t[4])`, "21nil3nil"},
		{`local t = json.decode('{"a": null, "b": 1}') return tostring(t.a) .. t.b .. tostring(next(t, "b"))`, "nil1nil"},
		{`local t = json.decode('{"a": 1, "a": null, "b": 2, "b": 3}') return tostring(t.a) .. t.b`, "nil3"},
		{`local t = json.decode(' { "x" : [ {"y": [] } , {} ] } ') return #t.x .. tostring(next(t.x[1].y)) .. tostring(next(t.x[2]))`, "2nilnil"},
		{`local t = json.decode('[1.5, 2, "s", true]') return math.type(t[1]) .. math.type(t[2]) .. t[3] .. tostring(t[4])`, "floatintegerstrue"},
		{`local t = json.decode('{"1": "one"}') return t["1"] .. tostring(t[1])`, "onenil"},
	})
}

func TestRoundTrip(t *testing.T) {
	doc := `{"a":[1,2.5,-0.0,1e+20,"x\n\"y\"",true,false,null,{}],"b":{"c":{"d":[[],[[]]]}},` +
		`"big":-1,"min":-9223372036854775808,"s":"é€😀\u0000\u001f"}`
	checkAll(t, []evalCase{
		{`return json.encode(json.decode([==[` + doc + `]==]))`, `{"a":[1,2.5,-0.0,1e20,"x\n\"y\"",true,false,null,{}],"b":{"c":{"d":[{},[{}]]}},` +
			`"big":-1,"min":-9223372036854775808,"s":"é€😀\u0000\u001f"}`},
		{`return json.encode(json.decode("[0.1,100.0,1e-05,1e-06,5e-324,1.7976931348623157e+308]"))`, "[0.1,100.0,0.00001,1e-6,5e-324,1.7976931348623157e308]"},
		// Floats of arbitrary bit patterns read back identically.
		{`math.randomseed(7)
		  for i = 1, 5000 do
		    local f = string.unpack("<d", string.pack("<i8", math.random(math.mininteger, math.maxinteger)))
		    if f == f and f ~= math.huge and f ~= -math.huge then
		      local g = json.decode(json.encode(f))
		      if math.type(g) ~= "float" or string.pack("<d", g) ~= string.pack("<d", f) then return json.encode(f) end
		    end
		    local n = math.random(math.mininteger, math.maxinteger)
		    local m = json.decode(json.encode(n))
		    if math.type(m) ~= "integer" or m ~= n then return n end
		  end
		  return "ok"`, "ok"},
		{`local s = {} for i = 0, 255 do s[#s+1] = string.char(i) end s = table.concat(s):sub(1, 128) .. "é"
		  return json.decode(json.encode(s)) == s`, "true"},
	})
}

func TestDecodeErrors(t *testing.T) {
	checkErrors(t, []evalCase{
		{`return json.decode("")`, `json.decode: unexpected end of input at line 1 column 1`},
		{`return json.decode("  \n  ")`, `json.decode: unexpected end of input at line 2 column 3`},
		{`return json.decode("[1,2")`, `json.decode: unexpected end of input at line 1 column 5`},
		{`return json.decode('{"a":')`, `json.decode: unexpected end of input at line 1 column 6`},
		{`return json.decode('{\n  "a": tru\n}')`, `json.decode: invalid literal (expected true) at line 2 column 8`},
		{`return json.decode('nul')`, `json.decode: invalid literal (expected null) at line 1 column 1`},
		{`return json.decode('[1 2]')`, `json.decode: expected ',' or ']' after array element, got character '2' at line 1 column 4`},
		{`return json.decode('[1,]')`, `json.decode: unexpected character ']' at line 1 column 4`},
		{`return json.decode('{"a" 1}')`, `json.decode: expected ':' after object key, got character '1' at line 1 column 6`},
		{`return json.decode('{"a":1 "b":2}')`, `json.decode: expected ',' or '}' after object member, got character '"' at line 1 column 8`},
		{`return json.decode('{1:2}')`, `json.decode: expected a string as object key, got character '1' at line 1 column 2`},
		{`return json.decode('{"a":1,}')`, `json.decode: expected a string as object key, got character '}' at line 1 column 8`},
		{`return json.decode('[01]')`, `json.decode: invalid number (leading zero) at line 1 column 2`},
		{`return json.decode('1.')`, `json.decode: invalid number (no digits after '.') at line 1 column 1`},
		{`return json.decode('[-]')`, `json.decode: invalid number (no digits) at line 1 column 2`},
		{`return json.decode('1e+')`, `json.decode: invalid number (no digits in exponent) at line 1 column 1`},
		{`return json.decode('+1')`, `json.decode: unexpected character '+' at line 1 column 1`},
		{`return json.decode('.5')`, `json.decode: unexpected character '.' at line 1 column 1`},
		{`return json.decode('1 2')`, `json.decode: unexpected character '2' after the value at line 1 column 3`},
		{`return json.decode('{} x')`, `json.decode: unexpected character 'x' after the value at line 1 column 4`},
		{`return json.decode('\n\n  "abc')`, `json.decode: unterminated string at line 3 column 3`},
		{`return json.decode('"ab\\')`, `json.decode: unterminated string at line 1 column 1`},
		{`return json.decode('"a\\xb"')`, `json.decode: invalid escape '\x' in string at line 1 column 3`},
		{`return json.decode('"\\u12"')`, `json.decode: invalid \u escape (expected 4 hex digits) at line 1 column 2`},
		{`return json.decode('"\\ud800"')`, `json.decode: invalid \u escape (high surrogate \uD800 not followed by a low one) at line 1 column 2`},
		{`return json.decode('"\\ud800\\u0041"')`, `json.decode: invalid \u escape (high surrogate \uD800 not followed by a low one) at line 1 column 2`},
		{`return json.decode('"x\\udc00"')`, `json.decode: invalid \u escape (lone low surrogate \uDC00) at line 1 column 3`},
		{`return json.decode('"a\tb"')`, `json.decode: unescaped control character U+0009 in string at line 1 column 3`},
		{`return json.decode('"é\\n\tb"')`, `json.decode: unescaped control character U+0009 in string at line 1 column 5`},
		{`return json.decode('["é", \xff]')`, `json.decode: unexpected byte 0xff at line 1 column 7`},
		{`return json.decode('["é", €]')`, `json.decode: unexpected character U+20AC at line 1 column 7`},
		{`return json.decode('"ok\xff"')`, `json.decode: invalid UTF-8 in string at line 1 column 4`},
		{`return json.decode('"\\n\xc3("')`, `json.decode: invalid UTF-8 in string at line 1 column 4`},
		{`return json.decode('\xef\xbb\xbf1')`, `json.decode: unexpected character U+FEFF at line 1 column 1`},
		{`return json.decode(42)`, `json.decode: expected a string, got number`},
		{`return json.decode()`, `json.decode: expected a string, got nil`},
	})
}

func TestDecodeDepth(t *testing.T) {
	checkAll(t, []evalCase{
		{`local t = json.decode(string.rep("[", 1000) .. string.rep("]", 1000))
		  local d = 0 while t do d = d + 1 t = t[1] end return d`, "1000"},
		{`local t = json.decode(string.rep('{"k":', 999) .. "{}" .. string.rep("}", 999))
		  local d = 0 while t do d = d + 1 t = t.k end return d`, "1000"},
		{`local t = json.decode(string.rep('[1,{"k":', 30) .. '"leaf"' .. string.rep("},2]", 30))
		  local d = 0 while type(t) == "table" do assert(t[1] == 1 and t[3] == 2) d = d + 1 t = t[2].k end return d .. t`, "30leaf"},
		{`local s = string.rep("[", 600) .. string.rep("]", 600) return json.encode(json.decode(s)) == s:gsub("%[%]", "{}")`, "true"},
	})
	checkErrors(t, []evalCase{
		{`return json.decode(string.rep("[", 1001) .. string.rep("]", 1001))`, `json.decode: nesting deeper than 1000 levels at line 1 column 1001`},
		{`return json.decode("[\n" .. string.rep('{"a":', 1001))`, `json.decode: nesting deeper than 1000 levels at line 2 column 4996`},
	})
}

// TestDecodeInCoroutine makes sure the functions work on a coroutine's own
// stack too.
func TestDecodeInCoroutine(t *testing.T) {
	checkAll(t, []evalCase{
		{`return coroutine.wrap(function() return json.encode(json.decode(string.rep("[", 50) .. string.rep("]", 50))) end)()`,
			strings.Repeat("[", 49) + "{}" + strings.Repeat("]", 49)},
	})
}
