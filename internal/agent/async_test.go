package agent

import (
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
