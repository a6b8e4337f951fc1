package proto

import "github.com/vmihailenco/msgpack/v5"

// Op names. The name selects the body type of a Request and of its Response.
const (
	OpHello     = "hello"
	OpPing      = "ping"
	OpExec      = "exec"
	OpReadFile  = "read_file"
	OpWriteFile = "write_file"
	OpStat      = "stat"
	OpListdir   = "listdir"
	OpMkdir     = "mkdir"
	OpUnlink    = "unlink"
	OpRename    = "rename"
	OpOpen      = "open"
	OpFileRead  = "file_read"
	OpFileWrite = "file_write"
	OpFileSeek  = "file_seek"
	OpFileTell  = "file_tell"
	OpFileClose = "file_close"
	OpBatch     = "batch"
	OpCancel    = "cancel"
	// OpDetach ends the session from the agent side once answered: every
	// handle is dropped and the agent waits for a new session on the same
	// channel. The host sends it before a snapshot so the saved guest is
	// idle and a restored one accepts a fresh session.
	OpDetach = "detach"
)

// Request asks the agent for one operation. On the call stream ID tells
// concurrent calls apart (the host picks distinct non-zero IDs); on an
// operation's own stream it is 0.
type Request struct {
	ID   uint64             `msgpack:"id,omitempty"`
	Op   string             `msgpack:"op"`
	Body msgpack.RawMessage `msgpack:"body,omitempty"`
}

// Response is the agent's answer to a Request, with the Request's ID:
// either Err or Body is set.
type Response struct {
	ID   uint64             `msgpack:"id,omitempty"`
	Err  *Error             `msgpack:"err,omitempty"`
	Body msgpack.RawMessage `msgpack:"body,omitempty"`
}

// CancelReq (op cancel, call stream only, never answered) abandons the
// call with that ID: its context ends, which kills a running command. The
// call still gets its (error) Response, which the host ignores.
type CancelReq struct {
	ID uint64 `msgpack:"id"`
}

// Empty is the body of operations that carry nothing back.
type Empty struct{}

// HelloReq opens a session; the agent answers with Hello whatever the
// version, so the host can report a mismatch clearly.
type HelloReq struct {
	Protocol int `msgpack:"protocol"`
}

// Hello describes the agent.
type Hello struct {
	Protocol     int      `msgpack:"protocol"`
	AgentVersion string   `msgpack:"agent_version"`
	Kernel       string   `msgpack:"kernel"`
	GuestOS      string   `msgpack:"guest_os"`
	Features     []string `msgpack:"features"`
}

// Ping echoes Data back; used for liveness and latency measurement.
type Ping struct {
	Data []byte `msgpack:"data,omitempty"`
}

// ExecReq runs a command to completion. With Shell the agent runs
// `/bin/sh -c Cmd` (Args must be empty); otherwise Cmd is looked up in the
// guest PATH and executed with Args as argv[1..].
type ExecReq struct {
	Cmd       string            `msgpack:"cmd"`
	Args      []string          `msgpack:"args,omitempty"`
	Shell     bool              `msgpack:"shell,omitempty"`
	Env       map[string]string `msgpack:"env,omitempty"`
	EnvClear  bool              `msgpack:"env_clear,omitempty"`
	Cwd       string            `msgpack:"cwd,omitempty"`
	Stdin     []byte            `msgpack:"stdin,omitempty"`
	TimeoutMs int64             `msgpack:"timeout_ms,omitempty"`
}

// Exec statuses.
const (
	StatusExited    = "exited"
	StatusSignalled = "signalled"
	StatusTimedOut  = "timed_out"
)

// Exit codes used when the process did not exit normally.
const (
	ExitCodeSignalled = -1
	ExitCodeTimedOut  = -2
)

// ExecResult is the outcome of ExecReq. Signal is 0 unless Status is
// StatusSignalled.
type ExecResult struct {
	ExitCode int    `msgpack:"exit_code"`
	Stdout   []byte `msgpack:"stdout"`
	Stderr   []byte `msgpack:"stderr"`
	Status   string `msgpack:"status"`
	Signal   int    `msgpack:"signal,omitempty"`
	// StdoutDropped and StderrDropped count the bytes the command wrote
	// beyond what the agent keeps of each output (MaxCapture): the host
	// reports them instead of returning a silently shortened output.
	StdoutDropped int64 `msgpack:"stdout_dropped,omitempty"`
	StderrDropped int64 `msgpack:"stderr_dropped,omitempty"`
}

// MaxCapture is how much of each of stdout and stderr a run's result
// carries, so the result fits in one frame (MaxFrameSize).
const MaxCapture = 16 << 20

// ReadFileReq reads a whole file. As a single operation the Response body is
// ReadFileResp{Streamed: true} and the content follows as Chunk frames; inside
// a batch the content is inline in Data.
//
// As a call (not on a stream of its own) with InlineMax > 0 the agent
// answers inline when the file holds at most InlineMax bytes, else with
// ReadFileResp{TooLarge: true} (reading nothing of a regular file whose
// size says so); the host then streams it. Small files thus cost one round
// trip on the call stream instead of a stream of their own.
type ReadFileReq struct {
	Path      string `msgpack:"path"`
	InlineMax int64  `msgpack:"inline_max,omitempty"`
}

// ReadFileResp carries an inline file or announces a chunked one. Size is
// the file's size when the stream starts, a hint for the receiver's buffer
// (files under /proc report 0 and still have content).
type ReadFileResp struct {
	Data     []byte `msgpack:"data,omitempty"`
	Streamed bool   `msgpack:"streamed,omitempty"`
	Size     int64  `msgpack:"size,omitempty"`
	TooLarge bool   `msgpack:"too_large,omitempty"`
}

// WriteFileReq creates (0644, or Mode when set) or truncates a file. With
// Streamed the content follows the request as Chunk frames and the agent
// answers after the final chunk; otherwise Data is the whole content.
type WriteFileReq struct {
	Path     string  `msgpack:"path"`
	Data     []byte  `msgpack:"data,omitempty"`
	Streamed bool    `msgpack:"streamed,omitempty"`
	Mode     *uint32 `msgpack:"mode,omitempty"`
}

// Chunk is one piece of bulk data. The last chunk has EOF set; a chunk with
// Err aborts the transfer.
type Chunk struct {
	Data []byte `msgpack:"data,omitempty"`
	EOF  bool   `msgpack:"eof,omitempty"`
	Err  *Error `msgpack:"err,omitempty"`
}

// PathReq is the body of stat, listdir and unlink.
type PathReq struct {
	Path string `msgpack:"path"`
}

// Entry types reported by stat and listdir.
const (
	EntryFile        = "file"
	EntryDirectory   = "directory"
	EntrySymlink     = "symlink"
	EntryFIFO        = "fifo"
	EntrySocket      = "socket"
	EntryBlockDevice = "block_device"
	EntryCharDevice  = "char_device"
	EntryOther       = "other"
)

// StatResp describes a file (links followed).
type StatResp struct {
	Size      int64   `msgpack:"size"`
	Mtime     float64 `msgpack:"mtime"`
	MtimeNs   int64   `msgpack:"mtime_ns"`
	Perm      uint32  `msgpack:"perm"`
	EntryType string  `msgpack:"entry_type"`
}

// DirEntry is one listdir entry.
type DirEntry struct {
	Name      string `msgpack:"name"`
	EntryType string `msgpack:"entry_type"`
}

// ListdirResp lists a directory without . and .., sorted by name.
type ListdirResp struct {
	Entries []DirEntry `msgpack:"entries"`
}

// MkdirReq creates a directory; Perm 0 means 0755.
type MkdirReq struct {
	Path    string `msgpack:"path"`
	Parents bool   `msgpack:"parents,omitempty"`
	// Perm is the new directory's mode; nil means 0755. A pointer, so an
	// explicit 0 is kept.
	Perm *uint32 `msgpack:"perm,omitempty"`
}

// RenameReq is rename(2).
type RenameReq struct {
	From string `msgpack:"from"`
	To   string `msgpack:"to"`
}

// OpenMode is the bit set of open_file's mode table.
type OpenMode uint32

// Open mode bits. Append implies write; Exclusive only matters with Create.
const (
	OpenRead OpenMode = 1 << iota
	OpenWrite
	OpenCreate
	OpenTruncate
	OpenAppend
	OpenExclusive
)

// OpenReq opens a file in the agent; Perm 0 means 0644 for created files.
type OpenReq struct {
	Path string   `msgpack:"path"`
	Mode OpenMode `msgpack:"mode"`
	Perm uint32   `msgpack:"perm,omitempty"`
}

// OpenResp names the session-scoped handle and the agent's kernel fd.
type OpenResp struct {
	Handle uint64 `msgpack:"handle"`
	Fd     int    `msgpack:"fd"`
}

// HandleReq addresses an open handle (tell, close).
type HandleReq struct {
	Handle uint64 `msgpack:"handle"`
}

// FileReadReq reads up to N bytes at the cursor.
type FileReadReq struct {
	Handle uint64 `msgpack:"handle"`
	N      int    `msgpack:"n"`
}

// DataResp carries bytes (file_read); empty at end of file.
type DataResp struct {
	Data []byte `msgpack:"data,omitempty"`
}

// FileWriteReq writes Data at the cursor.
type FileWriteReq struct {
	Handle uint64 `msgpack:"handle"`
	Data   []byte `msgpack:"data"`
}

// CountResp is a byte count (file_write).
type CountResp struct {
	N int `msgpack:"n"`
}

// Seek whences, equal to the Linux values.
const (
	SeekSet = 0
	SeekCur = 1
	SeekEnd = 2
)

// FileSeekReq moves the cursor.
type FileSeekReq struct {
	Handle uint64 `msgpack:"handle"`
	Offset int64  `msgpack:"offset"`
	Whence int    `msgpack:"whence"`
}

// OffsetResp is a file offset (seek, tell).
type OffsetResp struct {
	Offset int64 `msgpack:"offset"`
}

// BatchReq runs several non-streaming operations in one round trip. Every
// op runs, in order, whatever the earlier ones returned.
type BatchReq struct {
	Ops []Request `msgpack:"ops"`
}

// BatchResp has exactly one Response per op, in order.
type BatchResp struct {
	Results []Response `msgpack:"results"`
}
