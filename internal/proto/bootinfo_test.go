package proto

import (
	"encoding/json"
	"testing"
)

// TestBootInfoJSON pins boot.json: the host writes it, the agent reads it.
func TestBootInfoJSON(t *testing.T) {
	tm := 1700000000.5
	seed := Seed(18446744073709551615)
	bi := BootInfo{VMName: "a", InitialTime: &tm, RNGSeed: &seed, Network: json.RawMessage(`{"x":1}`)}
	b, err := json.Marshal(bi)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"vm_name":"a","initial_time":1700000000.5,"rng_seed":"18446744073709551615","network":{"x":1}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back BootInfo
	if err := json.Unmarshal(b, &back); err != nil || *back.RNGSeed != seed || *back.InitialTime != tm || back.VMName != "a" {
		t.Fatalf("round trip %+v %v", back, err)
	}
	if b, _ := json.Marshal(BootInfo{VMName: "b"}); string(b) != `{"vm_name":"b"}` {
		t.Fatalf("minimal: %s", b)
	}
}
