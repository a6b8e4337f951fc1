package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/proto"
)

// maxInlineRead bounds read_file inside a batch, where the content must fit
// in the single batch response; a standalone read_file streams instead.
const maxInlineRead = 8 << 20

const defaultFilePerm = 0o644

// readFileStream answers a standalone read_file: a Response announcing a
// streamed body, then the content in ChunkSize pieces and a final EOF chunk.
// Files of any size work, and /proc files whose size reads as 0 too.
func (s *Server) readFileStream(w io.Writer, body []byte) error {
	var r proto.ReadFileReq
	if err := decodeBody(proto.Request{Op: proto.OpReadFile, Body: body}, &r); err != nil {
		return writeErr(w, err)
	}
	f, err := os.Open(r.Path)
	if err != nil {
		return writeErr(w, err)
	}
	defer f.Close()
	// Fail before announcing a stream when the path is a directory, so the
	// host sees a plain EISDIR rather than an aborted transfer.
	head := proto.ReadFileResp{Streamed: true}
	if fi, err := f.Stat(); err == nil {
		if fi.IsDir() {
			return writeErr(w, proto.ErrnoError(unix.EISDIR))
		}
		head.Size = fi.Size()
	}
	if err := writeOK(w, head); err != nil {
		return err
	}
	buf := make([]byte, proto.ChunkSize)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if werr := proto.WriteChunk(w, buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return proto.WriteFrame(w, proto.Chunk{EOF: true})
		}
		if err != nil {
			return proto.WriteFrame(w, proto.Chunk{Err: proto.ErrorFrom(err)})
		}
	}
}

// readFileInline answers read_file inside a batch: the whole content, or
// EFBIG beyond maxInlineRead (the batch reply must fit in one frame).
func readFileInline(path string) (proto.ReadFileResp, error) {
	r, err := readFileUpTo(path, maxInlineRead)
	if err == nil && r.TooLarge {
		return proto.ReadFileResp{}, proto.ErrnoError(unix.EFBIG)
	}
	return r, err
}

// readFileUpTo answers a read_file call with InlineMax: the content when
// it is at most max bytes, else TooLarge. A regular file's size decides
// without reading; other files (/proc, devices) are read up to max+1.
func readFileUpTo(path string, max int64) (proto.ReadFileResp, error) {
	f, err := os.Open(path)
	if err != nil {
		return proto.ReadFileResp{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return proto.ReadFileResp{}, err
	}
	if fi.IsDir() {
		return proto.ReadFileResp{}, proto.ErrnoError(unix.EISDIR)
	}
	if fi.Mode().IsRegular() && fi.Size() > max {
		return proto.ReadFileResp{TooLarge: true}, nil
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return proto.ReadFileResp{}, err
	}
	if int64(len(data)) > max {
		return proto.ReadFileResp{TooLarge: true}, nil
	}
	if data == nil {
		data = []byte{}
	}
	return proto.ReadFileResp{Data: data}, nil
}

// openForWrite creates the file with the requested (default 0644) mode
// regardless of umask, or truncates an existing one keeping its mode unless
// a mode was asked for explicitly.
//
// The mode goes to open(2) itself, and fchmod follows only when the new or
// truncated file's mode still differs (a umask cleared bits, or an existing
// file had another mode): a plain creation is then a single open, as it is
// upstream. An extra chmod is not harmless under a security module that
// rewrites a file's descriptor on chmod, and inotify watchers see it.
func openForWrite(path string, mode *uint32) (*os.File, error) {
	perm := uint32(defaultFilePerm)
	if mode != nil {
		perm = *mode & 0o7777
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode(perm))
	created := err == nil
	if errors.Is(err, os.ErrExist) {
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	}
	if err != nil {
		return nil, err
	}
	if created || mode != nil {
		if err := ensurePerm(f, perm); err != nil {
			f.Close()
			return nil, fmt.Errorf("chmod %s: %w", path, err)
		}
	}
	return f, nil
}

// fileMode is perm (permission, setuid, setgid and sticky bits as in
// st_mode) as an os.FileMode, whose special bits live elsewhere.
func fileMode(perm uint32) os.FileMode {
	m := os.FileMode(perm & 0o777)
	if perm&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if perm&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if perm&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

// ensurePerm gives the open file f the mode bits perm, calling fchmod only
// when they differ.
func ensurePerm(f *os.File, perm uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&0o7777 == perm {
		return nil
	}
	return unix.Fchmod(int(f.Fd()), perm)
}

func writeFileInline(r proto.WriteFileReq) error {
	f, err := openForWrite(r.Path, r.Mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(r.Data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeFileStream answers a standalone write_file. With streamed content the
// agent consumes every chunk even after a failure, so the stream stays in
// step, and answers once at the end: one round trip for any size.
func (s *Server) writeFileStream(rw io.ReadWriter, body []byte) error {
	var r proto.WriteFileReq
	if err := decodeBody(proto.Request{Op: proto.OpWriteFile, Body: body}, &r); err != nil {
		return writeErr(rw, err)
	}
	if !r.Streamed {
		if err := writeFileInline(r); err != nil {
			return writeErr(rw, err)
		}
		return writeOK(rw, proto.Empty{})
	}
	f, opErr := openForWrite(r.Path, r.Mode)
	for {
		c, err := proto.ReadChunk(rw)
		if err != nil {
			if f != nil {
				f.Close()
			}
			return fmt.Errorf("write_file %s: read chunk: %w", r.Path, err)
		}
		if c.Err != nil && opErr == nil {
			opErr = c.Err
		}
		if len(c.Data) > 0 && opErr == nil {
			if _, err := f.Write(c.Data); err != nil {
				opErr = err
			}
		}
		if c.EOF || c.Err != nil {
			break
		}
	}
	if f != nil {
		if err := f.Close(); err != nil && opErr == nil {
			opErr = err
		}
	}
	if opErr != nil {
		return writeErr(rw, opErr)
	}
	return writeOK(rw, proto.Empty{})
}

func entryType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return proto.EntryFile
	case unix.S_IFDIR:
		return proto.EntryDirectory
	case unix.S_IFLNK:
		return proto.EntrySymlink
	case unix.S_IFIFO:
		return proto.EntryFIFO
	case unix.S_IFSOCK:
		return proto.EntrySocket
	case unix.S_IFBLK:
		return proto.EntryBlockDevice
	case unix.S_IFCHR:
		return proto.EntryCharDevice
	default:
		return proto.EntryOther
	}
}

func statPath(path string) (proto.StatResp, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return proto.StatResp{}, err
	}
	ns := st.Mtim.Sec*1e9 + st.Mtim.Nsec
	return proto.StatResp{
		Size:      st.Size,
		Mtime:     float64(st.Mtim.Sec) + float64(st.Mtim.Nsec)/1e9,
		MtimeNs:   ns,
		Perm:      st.Mode & 0o7777,
		EntryType: entryType(st.Mode),
	}, nil
}

func listdir(path string) (proto.ListdirResp, error) {
	des, err := os.ReadDir(path)
	if err != nil {
		return proto.ListdirResp{}, err
	}
	out := proto.ListdirResp{Entries: make([]proto.DirEntry, 0, len(des))}
	for _, de := range des {
		t := proto.EntryOther
		switch m := de.Type(); {
		case m.IsRegular():
			t = proto.EntryFile
		case m.IsDir():
			t = proto.EntryDirectory
		case m&os.ModeSymlink != 0:
			t = proto.EntrySymlink
		case m&os.ModeNamedPipe != 0:
			t = proto.EntryFIFO
		case m&os.ModeSocket != 0:
			t = proto.EntrySocket
		case m&os.ModeCharDevice != 0:
			t = proto.EntryCharDevice
		case m&os.ModeDevice != 0:
			t = proto.EntryBlockDevice
		}
		out.Entries = append(out.Entries, proto.DirEntry{Name: de.Name(), EntryType: t})
	}
	// os.ReadDir already sorts; sorting again keeps the contract explicit.
	sort.Slice(out.Entries, func(i, j int) bool { return out.Entries[i].Name < out.Entries[j].Name })
	return out, nil
}

// mkdir creates path with exactly perm (umask ignored). With Parents,
// missing ancestors are created 0755 and an existing directory is fine.
func mkdir(r proto.MkdirReq) error {
	perm := uint32(0o755)
	if r.Perm != nil {
		perm = *r.Perm & 0o7777
	}
	if r.Parents {
		if fi, err := os.Stat(r.Path); err == nil && fi.IsDir() {
			return nil
		}
		if parent := parentDir(r.Path); parent != "" {
			if err := os.MkdirAll(parent, 0o755); err != nil {
				return err
			}
		}
	}
	if err := unix.Mkdir(r.Path, perm); err != nil {
		if r.Parents && err == unix.EEXIST {
			if fi, serr := os.Stat(r.Path); serr == nil && fi.IsDir() {
				return nil
			}
		}
		return err
	}
	return unix.Chmod(r.Path, perm)
}

func parentDir(p string) string {
	for len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			if i == 0 {
				return "/"
			}
			return p[:i]
		}
	}
	return ""
}

// unlink removes a file, or an empty directory (unlink(2) says EISDIR).
func unlink(path string) error {
	err := unix.Unlink(path)
	if err == unix.EISDIR {
		return unix.Rmdir(path)
	}
	return err
}
