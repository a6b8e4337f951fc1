package agent

import (
	"encoding/binary"
	"fmt"

	"github.com/provium/provium/internal/proto"
)

// The wire format between the agent and its worker executor
// (cmd/provium-worker/worker.c; the two change in step). Every message is
// a 16-byte header {len u32, type u32, id u64} and len payload bytes,
// little endian; file descriptors travel as SCM_RIGHTS with the header.
// Strings and buffers are a u32 length and the bytes.
const (
	wpSyscall = 1 // flags, nr, args[6], bufs, ptr slots, nested links
	wpSpawn   = 2 // flags, path, dir, argv, envp; fds: stdin, stdout, stderr

	wpResult  = 16 // ret i64, errno i32, bufs; fd: the result when asked
	wpSpawned = 17 // pid i32, errno i32; fd: a pidfd of the child
	wpExit    = 18 // pid i32, wait status i32 (id 0: an event)
	wpError   = 19 // a message: the request was malformed
)

// wpSyscall flags.
const (
	wpSysAsync  = 1 // run on a thread of its own while in flight
	wpSysSendFD = 2 // pass the result back as an fd (open)
)

// wpSpawn flags.
const (
	wpSpawnSetpgid = 1
	wpSpawnLookup  = 2 // path is a bare name, found in the command's PATH
)

const wpHeaderSize = 16

// wpMaxMessage bounds a payload either way (largest: a syscall's buffers
// within one host frame).
const wpMaxMessage = 80 << 20

type wpWriter struct{ b []byte }

func (w *wpWriter) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *wpWriter) i64(v int64)  { w.b = binary.LittleEndian.AppendUint64(w.b, uint64(v)) }
func (w *wpWriter) bytes(p []byte) {
	w.u32(uint32(len(p)))
	w.b = append(w.b, p...)
}
func (w *wpWriter) strs(ss []string) {
	w.u32(uint32(len(ss)))
	for _, s := range ss {
		w.bytes([]byte(s))
	}
}

type wpReader struct {
	b   []byte
	bad bool
}

func (r *wpReader) take(n int) []byte {
	if r.bad || n < 0 || len(r.b) < n {
		r.bad = true
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *wpReader) u32() uint32 {
	p := r.take(4)
	if p == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(p)
}

func (r *wpReader) i32() int32 { return int32(r.u32()) }

func (r *wpReader) i64() int64 {
	p := r.take(8)
	if p == nil {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(p))
}

// validateSyscall checks pointer slots and nested links the way the
// in-process executor does, so a worker refuses the same requests with the
// same texts.
func validateSyscall(r proto.SyscallReq) error {
	for i, slot := range r.Ptrs {
		if i >= len(r.Bufs) {
			return &proto.Error{Message: fmt.Sprintf("syscall: ptrs has %d entries for %d bufs", len(r.Ptrs), len(r.Bufs))}
		}
		if slot < 0 || slot > 5 {
			return &proto.Error{Message: fmt.Sprintf("syscall: ptrs[%d] = %d is not an argument slot (0..5)", i, slot)}
		}
	}
	for k, n := range r.Nested {
		if n.Parent < 0 || n.Parent >= len(r.Bufs) || n.Child < 0 || n.Child >= len(r.Bufs) {
			return &proto.Error{Message: fmt.Sprintf("syscall: nested[%d]: buffer index out of range (have %d bufs)", k, len(r.Bufs))}
		}
		if n.Offset < 0 || n.Offset+8 > len(r.Bufs[n.Parent]) {
			return &proto.Error{Message: fmt.Sprintf("syscall: nested[%d]: offset %d+8 exceeds buffer %d (%d bytes)", k, n.Offset, n.Parent, len(r.Bufs[n.Parent]))}
		}
	}
	return nil
}

func encodeSyscall(r proto.SyscallReq, flags uint32) []byte {
	w := &wpWriter{}
	w.u32(flags)
	w.i64(r.Nr)
	for _, a := range r.Args {
		w.i64(int64(a))
	}
	w.u32(uint32(len(r.Bufs)))
	for _, b := range r.Bufs {
		w.bytes(b)
	}
	w.u32(uint32(len(r.Ptrs)))
	for _, s := range r.Ptrs {
		w.u32(uint32(s))
	}
	w.u32(uint32(len(r.Nested)))
	for _, n := range r.Nested {
		w.u32(uint32(n.Parent))
		w.u32(uint32(n.Child))
		w.u32(uint32(n.Offset))
	}
	return w.b
}

func decodeResult(b []byte) (proto.SyscallResult, error) {
	r := &wpReader{b: b}
	res := proto.SyscallResult{Ret: r.i64()}
	res.Errno = int(r.i32())
	n := int(r.u32())
	if n > len(b) {
		r.bad = true
	}
	if !r.bad {
		res.OutBufs = make([][]byte, n)
	}
	for i := 0; i < n && !r.bad; i++ {
		res.OutBufs[i] = append([]byte{}, r.take(int(r.u32()))...)
	}
	if r.bad {
		return proto.SyscallResult{}, fmt.Errorf("worker: malformed syscall result (%d bytes)", len(b))
	}
	return res, nil
}

func encodeSpawn(spec procSpec) []byte {
	w := &wpWriter{}
	flags := uint32(wpSpawnSetpgid)
	if spec.lookup {
		flags |= wpSpawnLookup
	}
	w.u32(flags)
	w.bytes([]byte(spec.path))
	w.bytes([]byte(spec.dir))
	w.strs(spec.argv)
	w.strs(spec.env)
	return w.b
}
