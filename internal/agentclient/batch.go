package agentclient

import (
	"context"
	"fmt"

	"github.com/provium/provium/internal/proto"
)

// Batch records operations to send in one round trip. Build it with the
// methods below, then pass it to Client.Batch.
type Batch struct {
	ops []proto.Request
	err error
}

// BatchResult is one op's outcome: Err, or Value typed by the op —
// proto.ExecResult (Exec), []byte (ReadFile), proto.StatResp (Stat),
// []proto.DirEntry (Listdir), proto.SyscallResult (Syscall), nil for the
// rest.
type BatchResult struct {
	Value any
	Err   *Error
}

// Len is the number of recorded ops.
func (b *Batch) Len() int { return len(b.ops) }

func (b *Batch) add(op string, body any) {
	raw, err := proto.Marshal(body)
	if err != nil && b.err == nil {
		b.err = fmt.Errorf("agentclient: batch op %d (%s): %w", len(b.ops)+1, op, err)
	}
	b.ops = append(b.ops, proto.Request{Op: op, Body: raw})
}

// Exec records a command run.
func (b *Batch) Exec(req proto.ExecReq) { b.add(proto.OpExec, req) }

// ReadFile records a whole-file read (content must fit in one response).
func (b *Batch) ReadFile(path string) { b.add(proto.OpReadFile, proto.ReadFileReq{Path: path}) }

// WriteFile records a file write with inline content.
func (b *Batch) WriteFile(path string, data []byte) {
	if data == nil {
		data = []byte{}
	}
	b.add(proto.OpWriteFile, proto.WriteFileReq{Path: path, Data: data})
}

// Stat records a stat.
func (b *Batch) Stat(path string) { b.add(proto.OpStat, proto.PathReq{Path: path}) }

// Listdir records a directory listing.
func (b *Batch) Listdir(path string) { b.add(proto.OpListdir, proto.PathReq{Path: path}) }

// Mkdir records a mkdir; perm 0 means 0755.
func (b *Batch) Mkdir(path string, parents bool, perm uint32) {
	b.add(proto.OpMkdir, proto.MkdirReq{Path: path, Parents: parents, Perm: &perm})
}

// Unlink records an unlink.
func (b *Batch) Unlink(path string) { b.add(proto.OpUnlink, proto.PathReq{Path: path}) }

// Rename records a rename.
func (b *Batch) Rename(from, to string) { b.add(proto.OpRename, proto.RenameReq{From: from, To: to}) }

// Syscall records a raw syscall (a batch's syscalls share one thread); its
// value is a proto.SyscallResult.
func (b *Batch) Syscall(req proto.SyscallReq) { b.add(proto.OpSyscall, req) }

// Batch sends every recorded op in one round trip and returns one result
// per op, in order. Every op runs even when earlier ones fail. An empty
// batch sends nothing.
func (c *Client) Batch(ctx context.Context, b *Batch) ([]BatchResult, error) {
	if b.err != nil {
		return nil, b.err
	}
	if len(b.ops) == 0 {
		return []BatchResult{}, nil
	}
	var resp proto.BatchResp
	if err := c.call(ctx, proto.OpBatch, proto.BatchReq{Ops: b.ops}, &resp); err != nil {
		return nil, err
	}
	if len(resp.Results) != len(b.ops) {
		return nil, fmt.Errorf("agentclient: batch: %d results for %d ops", len(resp.Results), len(b.ops))
	}
	out := make([]BatchResult, len(b.ops))
	for i, r := range resp.Results {
		if r.Err != nil {
			out[i].Err = newError(r.Err)
			continue
		}
		v, err := decodeBatchValue(b.ops[i].Op, r)
		if err != nil {
			return nil, fmt.Errorf("agentclient: batch result %d (%s): %w", i+1, b.ops[i].Op, err)
		}
		out[i].Value = v
	}
	return out, nil
}

func decodeBatchValue(op string, r proto.Response) (any, error) {
	switch op {
	case proto.OpExec:
		var v proto.ExecResult
		err := decodeResponse(r, &v)
		return v, err
	case proto.OpReadFile:
		var v proto.ReadFileResp
		if err := decodeResponse(r, &v); err != nil {
			return nil, err
		}
		if v.Data == nil {
			v.Data = []byte{}
		}
		return v.Data, nil
	case proto.OpStat:
		var v proto.StatResp
		err := decodeResponse(r, &v)
		return v, err
	case proto.OpListdir:
		var v proto.ListdirResp
		err := decodeResponse(r, &v)
		return v.Entries, err
	case proto.OpSyscall:
		var v proto.SyscallResult
		err := decodeResponse(r, &v)
		return v, err
	default:
		return nil, nil
	}
}
