package agentclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/provium/provium/internal/proto"
)

// Ping round-trips data through the agent and checks it comes back intact.
func (c *Client) Ping(ctx context.Context) error {
	in := proto.Ping{Data: []byte("provium")}
	var out proto.Ping
	if err := c.call(ctx, proto.OpPing, in, &out); err != nil {
		return err
	}
	if !bytes.Equal(in.Data, out.Data) {
		return fmt.Errorf("agentclient: ping echoed %q, sent %q", out.Data, in.Data)
	}
	return nil
}

// Exec runs a command to completion (see proto.ExecReq for the forms).
func (c *Client) Exec(ctx context.Context, req proto.ExecReq) (proto.ExecResult, error) {
	var res proto.ExecResult
	err := c.call(ctx, proto.OpExec, req, &res)
	return res, err
}

// ReadFile returns the whole content of a guest file, of any size.
func (c *Client) ReadFile(ctx context.Context, path string) ([]byte, error) {
	var buf bytes.Buffer
	if err := c.ReadFileTo(ctx, path, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// inlineFileMax is the size up to which read_file and write_file travel
// as one call on the call stream instead of a stream of their own.
const inlineFileMax = proto.ChunkSize // TestReadFileInlineBoundary tests both sides

// ReadFileTo streams a guest file into w without holding it in memory. A
// file of at most inlineFileMax bytes comes back in one call; a larger one
// is then streamed.
func (c *Client) ReadFileTo(ctx context.Context, path string, w io.Writer) error {
	var small proto.ReadFileResp
	if err := c.call(ctx, proto.OpReadFile, proto.ReadFileReq{Path: path, InlineMax: inlineFileMax}, &small); err != nil {
		return err
	}
	if !small.TooLarge {
		_, err := w.Write(small.Data)
		return err
	}
	s, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer s.release()
	if err := writeRequest(s.st, proto.OpReadFile, proto.ReadFileReq{Path: path}); err != nil {
		return ctxErr(ctx, err)
	}
	var head proto.ReadFileResp
	if err := readResponse(s.st, &head); err != nil {
		return agentOrCtxErr(ctx, err)
	}
	if !head.Streamed {
		_, err := w.Write(head.Data)
		return err
	}
	if g, ok := w.(interface{ Grow(int) }); ok && head.Size > 0 && head.Size < 1<<40 {
		g.Grow(int(head.Size)) // one allocation instead of repeated doubling
	}
	for {
		ch, err := proto.ReadChunk(s.st)
		if err != nil {
			return ctxErr(ctx, fmt.Errorf("agentclient: read_file %s: %w", path, err))
		}
		if ch.Err != nil {
			return newError(ch.Err)
		}
		if len(ch.Data) > 0 {
			if _, err := w.Write(ch.Data); err != nil {
				return fmt.Errorf("agentclient: read_file %s: write: %w", path, err)
			}
		}
		if ch.EOF {
			return nil
		}
	}
}

// WriteFile creates a guest file 0644 (or truncates it keeping its mode).
func (c *Client) WriteFile(ctx context.Context, path string, data []byte) error {
	return c.WriteFileFrom(ctx, path, bytes.NewReader(data), nil)
}

// WriteFileMode writes data and sets the file's permission bits (≤ 07777)
// to perm whether it was created or truncated.
func (c *Client) WriteFileMode(ctx context.Context, path string, data []byte, perm uint32) error {
	return c.WriteFileFrom(ctx, path, bytes.NewReader(data), &perm)
}

// WriteFileFrom streams r into a guest file; mode nil means the default
// (0644 when created, unchanged when truncated). Content of at most one
// chunk is one call on the call stream; larger content gets a stream of
// its own and follows the request as chunks. Either way it is one round
// trip.
func (c *Client) WriteFileFrom(ctx context.Context, path string, r io.Reader, mode *uint32) error {
	first := make([]byte, proto.ChunkSize)
	n, rerr := io.ReadFull(r, first)
	if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
		return fmt.Errorf("agentclient: write_file %s: read source: %w", path, rerr)
	}
	whole := rerr != nil // the source ended within the first chunk
	if whole {
		data := first[:n]
		if data == nil {
			data = []byte{}
		}
		return c.call(ctx, proto.OpWriteFile, proto.WriteFileReq{Path: path, Mode: mode, Data: data}, nil)
	}
	s, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer s.release()
	req := proto.WriteFileReq{Path: path, Mode: mode, Streamed: true}
	if err := writeRequest(s.st, proto.OpWriteFile, req); err != nil {
		return ctxErr(ctx, err)
	}
	if err := sendChunks(s.st, first[:n], r); err != nil {
		return ctxErr(ctx, fmt.Errorf("agentclient: write_file %s: %w", path, err))
	}
	return agentOrCtxErr(ctx, readResponse(s.st, nil))
}

// sendChunks writes first and then the rest of r as Chunks, ending with an
// EOF chunk, or an Err chunk when r fails so the agent answers promptly.
func sendChunks(w io.Writer, first []byte, r io.Reader) error {
	if err := proto.WriteChunk(w, first); err != nil {
		return err
	}
	buf := make([]byte, proto.ChunkSize)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if werr := proto.WriteChunk(w, buf[:n]); werr != nil {
				return werr
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return proto.WriteFrame(w, proto.Chunk{EOF: true})
		default:
			_ = proto.WriteFrame(w, proto.Chunk{Err: &proto.Error{Message: "host source failed: " + err.Error()}})
			return fmt.Errorf("read source: %w", err)
		}
	}
}

// agentOrCtxErr passes agent errors through and classifies transport ones.
func agentOrCtxErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var ae *Error
	if errors.As(err, &ae) {
		return err
	}
	return ctxErr(ctx, err)
}

// Stat describes a guest path, following symlinks.
func (c *Client) Stat(ctx context.Context, path string) (proto.StatResp, error) {
	var st proto.StatResp
	err := c.call(ctx, proto.OpStat, proto.PathReq{Path: path}, &st)
	return st, err
}

// Listdir lists a guest directory (no . or .., sorted by name).
func (c *Client) Listdir(ctx context.Context, path string) ([]proto.DirEntry, error) {
	var out proto.ListdirResp
	err := c.call(ctx, proto.OpListdir, proto.PathReq{Path: path}, &out)
	return out.Entries, err
}

// Mkdir creates a guest directory with exactly perm (umask ignored).
func (c *Client) Mkdir(ctx context.Context, path string, parents bool, perm uint32) error {
	return c.call(ctx, proto.OpMkdir, proto.MkdirReq{Path: path, Parents: parents, Perm: &perm}, nil)
}

// Unlink removes a guest file or empty directory.
func (c *Client) Unlink(ctx context.Context, path string) error {
	return c.call(ctx, proto.OpUnlink, proto.PathReq{Path: path}, nil)
}

// Rename is rename(2) in the guest.
func (c *Client) Rename(ctx context.Context, from, to string) error {
	return c.call(ctx, proto.OpRename, proto.RenameReq{From: from, To: to}, nil)
}
