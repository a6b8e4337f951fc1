package events

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"github.com/provium/provium/internal/pintest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/provium/provium/internal/proto"
)

var update = flag.Bool("update", false, "write testdata/pin/v<ProtocolVersion>.hex if it does not exist yet")

type pinCase struct {
	name string
	ts   int64
	p    Payload
}

// allMeta holds every MetaValue variant (C3).
var allMeta = Meta{
	"null":  nil,
	"bool":  true,
	"int":   int64(-7),
	"big":   int64(1) << 40,
	"float": 1.5,
	"str":   "sec-4.2",
	"bytes": []byte("\xff\x00"),
	"array": []any{"a", int64(1)},
	"map":   map[string]any{"z": false, "a": "x"},
	"empty": []any{},
}

// pinCases has one frame per kind with non-default fields, plus the C1
// example and the nil/empty variants of optional fields and arrays.
func pinCases() []pinCase {
	ra := Resource{MemoryBytes: 50 << 20, CPUs: 2}
	return []pinCase{
		{"c1_example", 1, FixtureCacheHit{Path: "a"}},
		{"file_discovered_empty", 1700000000000000001, FileDiscovered{Path: "net/dns.test.lua"}},
		{"file_discovered_full", 1700000000000000002, FileDiscovered{Path: "a.test.lua", FixtureRefs: []string{"base", "db/seeded"}, DeclaredClaim: &Resource{MemoryBytes: 1 << 30, CPUs: 4}}},
		{"file_dispatched", 3, FileDispatched{Path: "a.test.lua", Reservation: ra}},
		{"file_blocked", 4, FileBlocked{Path: "a.test.lua", WaitingFor: ra, Reason: BlockedPoolFull}},
		{"file_completed", 5, FileCompleted{Path: "a.test.lua", Status: "timed_out", DurationNs: 300_000_000_000}},
		{"test_started", 6, TestStarted{Path: "a.test.lua", Name: "boots", Meta: allMeta}},
		{"test_started_no_meta", 6, TestStarted{Path: "a.test.lua", Name: "x"}},
		{"test_skipped", 7, TestSkipped{Path: "a.test.lua", Name: "slow one", Reason: "filtered: slow tests skipped (pass --include-slow)", Meta: Meta{"slow": true}}},
		{"test_passed", 8, TestPassed{Path: "a.test.lua", Name: "boots", DurationNs: 2_500_000_000, Meta: Meta{"spec": []any{"10-lua-api.md §5"}}}},
		{"test_failed", 9, TestFailed{Path: "a.test.lua", Name: "breaks", DurationNs: 12, Reason: "a.test.lua:3: boom", ConsoleExcerpt: "--- console a ---\nhello\n", Meta: Meta{"spec": "x"}}},
		{"vm_spawned", 10, VMSpawned{File: "a.test.lua", VMName: "dc1/a", Profile: "linux", MemoryBytes: 512 << 20, CID: 3}},
		{"vm_shutdown", 11, VMShutdown{File: "a.test.lua", VMName: "dc1/a", DurationNs: 4_000_000_000}},
		{"pool_state", 12, PoolState{Used: ra, Available: Resource{MemoryBytes: 19 << 30, CPUs: 1}}},
		{"claim_acquired", 13, ClaimAcquired{Path: "a.test.lua", Amount: ra}},
		{"claim_released", 14, ClaimReleased{Path: "a.test.lua", Amount: ra}},
		{"fixture_build_started", 15, FixtureBuildStarted{Path: "base"}},
		{"fixture_build_done", 16, FixtureBuildDone{Path: "base", DurationNs: 9_000_000_000, SnapshotBytes: 123456789}},
		{"fixture_build_waiting", 17, FixtureBuildWaiting{Path: "base", HeldByFile: "b.test.lua"}},
		{"fixture_cache_hit", 18, FixtureCacheHit{Path: "db/seeded"}},
	}
}

func goldenPath() string {
	return filepath.Join("testdata", "pin", fmt.Sprintf("v%d.hex", proto.ProtocolVersion))
}

func readGolden(t *testing.T) map[string][]byte {
	t.Helper()
	return pintest.ReadGolden(t, goldenPath())
}

func TestPin(t *testing.T) {
	cases := pinCases()
	if *update {
		if _, err := os.Stat(goldenPath()); err == nil {
			t.Fatalf("%s exists: an encoding change needs a ProtocolVersion bump, not -update", goldenPath())
		}
		var b strings.Builder
		fmt.Fprintf(&b, "# provium event stream, protocol v%d: one frame per event kind\n", proto.ProtocolVersion)
		for _, c := range cases {
			f, err := Encode(c.ts, c.p)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s %s\n", c.name, hex.EncodeToString(f))
		}
		if err := os.MkdirAll(filepath.Dir(goldenPath()), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath(), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden := readGolden(t)
	seen := map[string]bool{}
	for _, c := range cases {
		seen[c.p.Kind()] = true
		t.Run(c.name, func(t *testing.T) {
			want, ok := golden[c.name]
			if !ok {
				t.Fatalf("no golden for %s: a new kind needs a ProtocolVersion bump", c.name)
			}
			got, err := Encode(c.ts, c.p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding changed:\n got %x\nwant %x", got, want)
			}
			ev, err := NewReader(bytes.NewReader(want)).Next()
			if err != nil {
				t.Fatal(err)
			}
			wantP := normalize(c.p)
			if ev.TS != c.ts || ev.Kind != c.p.Kind() || !reflect.DeepEqual(ev.Payload, wantP) {
				t.Fatalf("decode mismatch:\n got %d %s %#v\nwant %d %s %#v", ev.TS, ev.Kind, ev.Payload, c.ts, c.p.Kind(), wantP)
			}
		})
	}
	for _, k := range Kinds {
		if !seen[k] {
			t.Errorf("kind %s has no pinned frame", k)
		}
	}
	if len(golden) != len(cases) {
		t.Fatalf("golden has %d entries, test has %d", len(golden), len(cases))
	}
}

// TestC1Example is the byte sequence 30-runtime.md C1 spells out.
func TestC1Example(t *testing.T) {
	want := []byte{0, 0, 0, 0x2c, 0x83, 0xa2, 't', 's', 0x01, 0xa4, 'k', 'i', 'n', 'd', 0xb1}
	want = append(want, "fixture_cache_hit"...)
	want = append(want, 0xa7)
	want = append(want, "payload"...)
	want = append(want, 0x81, 0xa4)
	want = append(want, "path"...)
	want = append(want, 0xa1, 'a')
	got, err := Encode(1, FixtureCacheHit{Path: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x\nwant %x", got, want)
	}
}
