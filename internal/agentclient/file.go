package agentclient

import (
	"context"
	"sync"

	"github.com/provium/provium/internal/proto"
)

// File is a handle to a file held open by the agent for this session. It
// becomes invalid when the session ends (the agent closes it).
type File struct {
	c      *Client
	handle uint64
	fd     int

	mu     sync.Mutex
	closed bool
}

// Open opens a guest file. perm applies to created files; 0 means 0644.
func (c *Client) Open(ctx context.Context, path string, mode proto.OpenMode, perm uint32) (*File, error) {
	var resp proto.OpenResp
	if err := c.call(ctx, proto.OpOpen, proto.OpenReq{Path: path, Mode: mode, Perm: perm}, &resp); err != nil {
		return nil, err
	}
	return &File{c: c, handle: resp.Handle, fd: resp.Fd}, nil
}

// Handle is the agent's session-scoped handle number.
func (f *File) Handle() uint64 { return f.handle }

// Fd is the kernel fd in the agent process, 0 after Close.
func (f *File) Fd() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0
	}
	return f.fd
}

// Closed reports whether Close was called.
func (f *File) Closed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// Read returns at most n bytes from the cursor; empty (not an error) at EOF.
func (f *File) Read(ctx context.Context, n int) ([]byte, error) {
	var out proto.DataResp
	err := f.c.call(ctx, proto.OpFileRead, proto.FileReadReq{Handle: f.handle, N: n}, &out)
	if out.Data == nil {
		out.Data = []byte{}
	}
	return out.Data, err
}

// Write writes at the cursor and returns the bytes written (may be short).
func (f *File) Write(ctx context.Context, data []byte) (int, error) {
	var out proto.CountResp
	err := f.c.call(ctx, proto.OpFileWrite, proto.FileWriteReq{Handle: f.handle, Data: data}, &out)
	return out.N, err
}

// Seek moves the cursor (whence proto.SeekSet/SeekCur/SeekEnd) and returns
// the new offset.
func (f *File) Seek(ctx context.Context, off int64, whence int) (int64, error) {
	var out proto.OffsetResp
	err := f.c.call(ctx, proto.OpFileSeek, proto.FileSeekReq{Handle: f.handle, Offset: off, Whence: whence}, &out)
	return out.Offset, err
}

// Tell asks the agent for the current offset.
func (f *File) Tell(ctx context.Context) (int64, error) {
	var out proto.OffsetResp
	err := f.c.call(ctx, proto.OpFileTell, proto.HandleReq{Handle: f.handle}, &out)
	return out.Offset, err
}

// Close releases the handle; closing twice is a no-op.
func (f *File) Close(ctx context.Context) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.mu.Unlock()
	return f.c.call(ctx, proto.OpFileClose, proto.HandleReq{Handle: f.handle}, nil)
}
