package luajson

import "testing"

// benchTable builds a mixed table that encodes to about 1 KiB: nested
// objects and arrays, strings needing escapes, integers and floats.
const benchTable = `
local t = {
  name = "provium-bench-vm", id = 123456789, ratio = 0.75, enabled = true, parent = false,
  tags = {"net", "disk", "smoke", "nightly", "x86_64"},
  note = "line one\nline two with \"quotes\" and a tab\there, caf\u{e9}",
  env = {HOME = "/root", PATH = "/usr/local/bin:/usr/bin:/bin", LANG = "C.UTF-8", TERM = "dumb"},
  disks = {},
  nics = {},
  samples = {},
}
for i = 1, 4 do
  t.disks[i] = {path = "/var/lib/provium/images/disk" .. i .. ".qcow2", size = i * 1073741824, readonly = i % 2 == 0, serial = "SN" .. i * 7919}
end
for i = 1, 2 do
  t.nics[i] = {mac = string.format("52:54:00:12:34:%02x", i), bridge = "br" .. i, mtu = 1500, up = true}
end
for i = 1, 12 do t.samples[i] = i * 1.125 + i / 7 end
`

// benchLoop runs body b.N times inside one Lua function call, so the
// measurement is json work plus Lua's own call overhead only. Throughput is
// relative to the size of the encoded table.
func benchLoop(b *testing.B, body string) {
	s := newState(b)
	L := s.Main()
	if err := L.DoString(benchTable+`bench_table = t bench_json = json.encode(t)`, "=bench"); err != nil {
		b.Fatal(err)
	}
	L.GetGlobal("bench_json")
	js, _ := L.ToString(-1)
	L.Pop(1)
	if err := L.Load(`local n = ... for _ = 1, n do `+body+` end`, "=loop"); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	b.ResetTimer()
	L.PushInteger(int64(b.N))
	if err := L.PCall(1, 0, false); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkEncode1KiB(b *testing.B) { benchLoop(b, `json.encode(bench_table)`) }

func BenchmarkDecode1KiB(b *testing.B) { benchLoop(b, `json.decode(bench_json)`) }
