package runner

import (
	"testing"
)

// BenchmarkAssertEq measures assertion throughput inside a test body (B8 in
// 50-performance.md): each iteration runs one file whose single test makes
// 100 000 t:assert_eq calls; the reported assertions/s is the figure.
func BenchmarkAssertEq(b *testing.B) {
	const n = 100000
	src := `test("hot", function(t) for i = 1, 100000 do t:assert_eq(i, i) end end)`
	b.ReportAllocs()
	total := 0
	for b.Loop() {
		f := runSource(b, src, nil)
		if f.Tests[0].Status != "passed" {
			b.Fatalf("benchmark test failed: %s", f.Tests[0].Message)
		}
		total += n
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "assertions/s")
}

// BenchmarkAssertAndEncode is B8's mixed body: assertions plus json.encode
// of a ~1 KiB table in the same test.
func BenchmarkAssertAndEncode(b *testing.B) {
	src := `test("hot", function(t)
  local doc = {}
  for i = 1, 40 do doc["key" .. i] = {i, i * 0.5, "value " .. i} end
  for i = 1, 1000 do
    t:assert_eq(i, i)
    local s = json.encode(doc)
    t:assert(#s > 1000)
  end
end)`
	for b.Loop() {
		f := runSource(b, src, nil)
		if f.Tests[0].Status != "passed" {
			b.Fatalf("benchmark test failed: %s", f.Tests[0].Message)
		}
	}
}
