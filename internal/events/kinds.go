// Package events is Provium's structured event stream (30-runtime.md part
// C): the event kinds and their payloads, the frame encoding (4-byte
// big-endian length + msgpack, byte-compatible with upstream's rmp-serde
// named encoding), a decoder for consumers, and the emitter that stamps,
// encodes and fans each event out to the run's sinks (file, stdout, unix
// socket) and in-process observers (the trace view).
package events

// Kind names, in the order of 30-runtime.md C2.
const (
	KindFileDiscovered      = "file_discovered"
	KindFileDispatched      = "file_dispatched"
	KindFileBlocked         = "file_blocked"
	KindFileCompleted       = "file_completed"
	KindTestStarted         = "test_started"
	KindTestSkipped         = "test_skipped"
	KindTestPassed          = "test_passed"
	KindTestFailed          = "test_failed"
	KindVMSpawned           = "vm_spawned"
	KindVMShutdown          = "vm_shutdown"
	KindPoolState           = "pool_state"
	KindClaimAcquired       = "claim_acquired"
	KindClaimReleased       = "claim_released"
	KindFixtureBuildStarted = "fixture_build_started"
	KindFixtureBuildDone    = "fixture_build_done"
	KindFixtureBuildWaiting = "fixture_build_waiting"
	KindFixtureCacheHit     = "fixture_cache_hit"
)

// Kinds lists every kind in C2 order.
var Kinds = []string{
	KindFileDiscovered, KindFileDispatched, KindFileBlocked, KindFileCompleted,
	KindTestStarted, KindTestSkipped, KindTestPassed, KindTestFailed,
	KindVMSpawned, KindVMShutdown, KindPoolState, KindClaimAcquired, KindClaimReleased,
	KindFixtureBuildStarted, KindFixtureBuildDone, KindFixtureBuildWaiting, KindFixtureCacheHit,
}

// Reasons of file_blocked and statuses of file_completed.
const (
	BlockedPoolFull    = "pool_full"
	BlockedPSIPressure = "psi_pressure"
)

// Payload is the body of one event; Kind names it on the wire. Field
// order in each struct is the wire order (C2): do not reorder.
type Payload interface{ Kind() string }

// Resource is a ResourceAmount: memory and vCPUs.
type Resource struct {
	MemoryBytes uint64 `msgpack:"memory_bytes"`
	CPUs        uint32 `msgpack:"cpus"`
}

type FileDiscovered struct {
	Path          string    `msgpack:"path"`
	FixtureRefs   []string  `msgpack:"fixture_refs"`
	DeclaredClaim *Resource `msgpack:"declared_claim"`
}

type FileDispatched struct {
	Path        string   `msgpack:"path"`
	Reservation Resource `msgpack:"reservation"`
}

type FileBlocked struct {
	Path       string   `msgpack:"path"`
	WaitingFor Resource `msgpack:"waiting_for"`
	Reason     string   `msgpack:"reason"`
}

type FileCompleted struct {
	Path       string `msgpack:"path"`
	Status     string `msgpack:"status"`
	DurationNs uint64 `msgpack:"duration_ns"`
}

type TestStarted struct {
	Path string `msgpack:"path"`
	Name string `msgpack:"name"`
	Meta Meta   `msgpack:"meta"`
}

type TestSkipped struct {
	Path   string `msgpack:"path"`
	Name   string `msgpack:"name"`
	Reason string `msgpack:"reason"`
	Meta   Meta   `msgpack:"meta"`
}

type TestPassed struct {
	Path       string `msgpack:"path"`
	Name       string `msgpack:"name"`
	DurationNs uint64 `msgpack:"duration_ns"`
	Meta       Meta   `msgpack:"meta"`
}

type TestFailed struct {
	Path           string `msgpack:"path"`
	Name           string `msgpack:"name"`
	DurationNs     uint64 `msgpack:"duration_ns"`
	Reason         string `msgpack:"reason"`
	ConsoleExcerpt string `msgpack:"console_excerpt"`
	Meta           Meta   `msgpack:"meta"`
}

type VMSpawned struct {
	File        string `msgpack:"file"`
	VMName      string `msgpack:"vm_name"`
	Profile     string `msgpack:"profile"`
	MemoryBytes uint64 `msgpack:"memory_bytes"`
	CID         uint32 `msgpack:"cid"`
}

type VMShutdown struct {
	File       string `msgpack:"file"`
	VMName     string `msgpack:"vm_name"`
	DurationNs uint64 `msgpack:"duration_ns"`
}

type PoolState struct {
	Used      Resource `msgpack:"used"`
	Available Resource `msgpack:"available"`
}

type ClaimAcquired struct {
	Path   string   `msgpack:"path"`
	Amount Resource `msgpack:"amount"`
}

type ClaimReleased struct {
	Path   string   `msgpack:"path"`
	Amount Resource `msgpack:"amount"`
}

type FixtureBuildStarted struct {
	Path string `msgpack:"path"`
}

type FixtureBuildDone struct {
	Path          string `msgpack:"path"`
	DurationNs    uint64 `msgpack:"duration_ns"`
	SnapshotBytes uint64 `msgpack:"snapshot_bytes"`
}

type FixtureBuildWaiting struct {
	Path       string `msgpack:"path"`
	HeldByFile string `msgpack:"held_by_file"`
}

type FixtureCacheHit struct {
	Path string `msgpack:"path"`
}

func (FileDiscovered) Kind() string      { return KindFileDiscovered }
func (FileDispatched) Kind() string      { return KindFileDispatched }
func (FileBlocked) Kind() string         { return KindFileBlocked }
func (FileCompleted) Kind() string       { return KindFileCompleted }
func (TestStarted) Kind() string         { return KindTestStarted }
func (TestSkipped) Kind() string         { return KindTestSkipped }
func (TestPassed) Kind() string          { return KindTestPassed }
func (TestFailed) Kind() string          { return KindTestFailed }
func (VMSpawned) Kind() string           { return KindVMSpawned }
func (VMShutdown) Kind() string          { return KindVMShutdown }
func (PoolState) Kind() string           { return KindPoolState }
func (ClaimAcquired) Kind() string       { return KindClaimAcquired }
func (ClaimReleased) Kind() string       { return KindClaimReleased }
func (FixtureBuildStarted) Kind() string { return KindFixtureBuildStarted }
func (FixtureBuildDone) Kind() string    { return KindFixtureBuildDone }
func (FixtureBuildWaiting) Kind() string { return KindFixtureBuildWaiting }
func (FixtureCacheHit) Kind() string     { return KindFixtureCacheHit }

// newPayload returns a pointer to a zero payload of kind, or nil for a
// kind this version does not know (consumers skip those).
func newPayload(kind string) Payload {
	switch kind {
	case KindFileDiscovered:
		return &FileDiscovered{}
	case KindFileDispatched:
		return &FileDispatched{}
	case KindFileBlocked:
		return &FileBlocked{}
	case KindFileCompleted:
		return &FileCompleted{}
	case KindTestStarted:
		return &TestStarted{}
	case KindTestSkipped:
		return &TestSkipped{}
	case KindTestPassed:
		return &TestPassed{}
	case KindTestFailed:
		return &TestFailed{}
	case KindVMSpawned:
		return &VMSpawned{}
	case KindVMShutdown:
		return &VMShutdown{}
	case KindPoolState:
		return &PoolState{}
	case KindClaimAcquired:
		return &ClaimAcquired{}
	case KindClaimReleased:
		return &ClaimReleased{}
	case KindFixtureBuildStarted:
		return &FixtureBuildStarted{}
	case KindFixtureBuildDone:
		return &FixtureBuildDone{}
	case KindFixtureBuildWaiting:
		return &FixtureBuildWaiting{}
	case KindFixtureCacheHit:
		return &FixtureCacheHit{}
	}
	return nil
}
