package agent

import (
	"bytes"
	"testing"

	"github.com/provium/provium/internal/proto"
)

func TestTailStart(t *testing.T) {
	cases := []struct {
		r    proto.TailFileReq
		want int64
	}{
		{proto.TailFileReq{Start: proto.TailEnd}, 100},
		{proto.TailFileReq{}, 100},
		{proto.TailFileReq{Start: proto.TailBeginning}, 0},
		{proto.TailFileReq{Start: "start"}, 0},
		{proto.TailFileReq{Start: proto.TailOffset, Offset: 7}, 7},
		{proto.TailFileReq{Start: proto.TailOffset, Offset: 500}, 500},
		{proto.TailFileReq{Start: proto.TailOffset, Offset: -30}, 70},
		{proto.TailFileReq{Start: proto.TailOffset, Offset: -300}, 0},
	}
	for _, c := range cases {
		if got, err := tailStart(c.r, 100); err != nil || got != c.want {
			t.Errorf("tailStart(%+v) = %d %v, want %d", c.r, got, err, c.want)
		}
	}
	if _, err := tailStart(proto.TailFileReq{Start: "middle"}, 1); err == nil {
		t.Fatal("unknown start accepted")
	}
}

func TestIoctlRequest(t *testing.T) {
	r, err := ioctlRequest(proto.IoctlReq{Fd: 3, Cmd: 0x5401, Data: []byte{1, 2}, Bufs: [][]byte{{9}}, PtrOffsets: []int{0}})
	if err != nil || r.Args[0] != 3 || r.Args[1] != 0x5401 || len(r.Bufs) != 2 || len(r.Ptrs) != 1 || r.Ptrs[0] != 2 ||
		len(r.Nested) != 1 || r.Nested[0] != (proto.SyscallNested{Parent: 0, Child: 1, Offset: 0}) {
		t.Fatalf("ioctlRequest = %+v %v", r, err)
	}
	if r, err := ioctlRequest(proto.IoctlReq{Fd: -1, Cmd: 1}); err != nil || r.Args[0] != ^uint64(0) || len(r.Ptrs) != 0 {
		t.Fatalf("no data: %+v %v", r, err)
	}
	if _, err := ioctlRequest(proto.IoctlReq{Fd: 1, Bufs: [][]byte{{1}}, PtrOffsets: []int{0}}); err == nil {
		t.Fatal("ptr_offsets without data accepted")
	}
	if _, err := ioctlRequest(proto.IoctlReq{Fd: 1, Data: []byte{1}, PtrOffsets: []int{0}}); err == nil {
		t.Fatal("more ptr_offsets than bufs accepted")
	}
}

func TestRawSyscallNestedOutOfRange(t *testing.T) {
	_, err := rawSyscall(proto.SyscallReq{Nr: 39, Bufs: [][]byte{make([]byte, 8), {}}, Nested: []proto.SyscallNested{{Parent: 0, Child: 1, Offset: 1}}})
	if err == nil {
		t.Fatal("nested write past the buffer accepted")
	}
	res, err := rawSyscall(proto.SyscallReq{Nr: 39, Bufs: [][]byte{make([]byte, 8), {}}, Nested: []proto.SyscallNested{{Parent: 0, Child: 1}}})
	if err != nil || res.Ret <= 0 || len(res.OutBufs[1]) != 0 || len(res.OutBufs[0]) != 8 {
		t.Fatalf("getpid with buffers: %+v %v", res, err)
	}
}

// pumpBytes writes p into b the way the pump does, through readFrom.
func pumpBytes(t *testing.T, b *outBuf, p []byte) {
	t.Helper()
	r := bytes.NewReader(p)
	for r.Len() > 0 {
		if _, err := b.readFrom(r); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOutBufKeepsUpAndReportsLoss: a reader that keeps up receives every
// byte of an output longer than what is retained; a reader starting at 0
// afterwards learns exactly how much it lost; the captured head stays the
// first bytes written, with the rest counted.
func TestOutBufKeepsUpAndReportsLoss(t *testing.T) {
	b := newOutBuf()
	chunk := make([]byte, 1<<20)
	var readOff int64
	sum := 0
	for i := 0; i < maxRetained>>20+8; i++ {
		for j := range chunk {
			chunk[j] = byte(i)
		}
		pumpBytes(t, b, chunk)
		for {
			data, lost, _, _ := b.since(readOff, proto.ChunkSize)
			if lost != 0 {
				t.Fatalf("a reader that keeps up lost %d bytes at %d", lost, readOff)
			}
			if len(data) == 0 {
				break
			}
			sum += len(data)
			readOff += int64(len(data))
		}
	}
	b.finish()
	total := (maxRetained>>20 + 8) << 20
	if sum != total {
		t.Fatalf("reader got %d of %d bytes", sum, total)
	}
	data, lost, _, _ := b.since(0, 16)
	if lost != 8<<20 || data[0] != 8 {
		t.Fatalf("late reader: lost %d (want %d), first retained byte %d (want 8)", lost, 8<<20, data[0])
	}
	head, dropped := b.captured(proto.MaxCapture)
	if len(head) != proto.MaxCapture || head[0] != 0 || head[len(head)-1] != byte(proto.MaxCapture>>20-1) {
		t.Fatalf("captured head: %d bytes, first %d, last %d", len(head), head[0], head[len(head)-1])
	}
	if dropped != int64(total-proto.MaxCapture) {
		t.Fatalf("dropped %d, want %d", dropped, total-proto.MaxCapture)
	}
}

// TestOutBufOddSizes: appends that straddle storage blocks read back
// byte for byte, in reads of another odd size, and the captured head is the
// same bytes.
func TestOutBufOddSizes(t *testing.T) {
	b := newOutBuf()
	var want []byte
	for i := 0; len(want) < 3*outBlock+12345; i++ {
		p := make([]byte, 777+i%5000)
		for j := range p {
			p[j] = byte(i + j)
		}
		want = append(want, p...)
		pumpBytes(t, b, p)
	}
	b.finish()
	var got []byte
	for {
		data, lost, complete, _ := b.since(int64(len(got)), 5003)
		if lost != 0 {
			t.Fatalf("lost %d", lost)
		}
		got = append(got, data...)
		if complete {
			break
		}
		if len(data) == 0 {
			t.Fatalf("no data at %d of %d and not complete", len(got), len(want))
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read back %d bytes, differing from the %d written", len(got), len(want))
	}
	head, dropped := b.captured(proto.MaxCapture)
	if !bytes.Equal(head, want) || dropped != 0 {
		t.Fatalf("captured %d bytes (dropped %d), want all %d", len(head), dropped, len(want))
	}
}

// TestOutBufReadFrom: the pump's direct reads fill blocks in order across
// block boundaries.
func TestOutBufReadFrom(t *testing.T) {
	want := make([]byte, 2*outBlock+outBlock/2+7)
	for i := range want {
		want[i] = byte(i * 7)
	}
	b := newOutBuf()
	r := bytes.NewReader(want)
	for {
		if _, err := b.readFrom(r); err != nil {
			break
		}
	}
	b.finish()
	got, dropped := b.captured(len(want))
	if !bytes.Equal(got, want) || dropped != 0 {
		t.Fatalf("read %d bytes (dropped %d), want the %d given back", len(got), dropped, len(want))
	}
}
