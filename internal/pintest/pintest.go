// Package pintest reads the golden files of the protocol pin tests
// (testdata/pin/v<PROTOCOL_VERSION>.hex, 30-runtime.md C8): one
// `<name> <hex>` line per frame, `#` comments. The agent wire
// (internal/proto) and the event stream (internal/events) share it.
package pintest

import (
	"bufio"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// ReadGolden returns the frames of the golden file at path by name.
func ReadGolden(t testing.TB, path string) map[string][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open golden (create it with -update only for a new ProtocolVersion): %v", err)
	}
	defer f.Close()
	out := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hx, ok := strings.Cut(line, " ")
		if !ok {
			t.Fatalf("bad golden line %q", line)
		}
		b, err := hex.DecodeString(hx)
		if err != nil {
			t.Fatalf("golden %s: %v", name, err)
		}
		out[name] = b
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
