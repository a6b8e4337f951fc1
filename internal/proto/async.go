package proto

// Operations added for processes, streams, workers and the clock
// (10-lua-api.md §5.4, §7, §8, §9, §10, §12).
const (
	// OpProcStart starts a command (ExecReq, TimeoutMs must be 0) and
	// answers ProcStartResp at once.
	OpProcStart = "proc_start"
	// OpProcWait waits for a process (ProcWaitReq) and answers ExecResult.
	OpProcWait = "proc_wait"
	// OpProcStatus answers ProcStatusResp without blocking (HandleReq).
	OpProcStatus = "proc_status"
	// OpProcSignal sends a signal to a running process (ProcSignalReq).
	OpProcSignal = "proc_signal"
	// OpProcStdin writes to the process's stdin (ProcStdinReq → CountResp).
	OpProcStdin = "proc_stdin"
	// OpProcCloseStdin closes the process's stdin (HandleReq), idempotent.
	OpProcCloseStdin = "proc_close_stdin"
	// OpProcClose ends a process (HandleReq): SIGTERM, up to 2 s, SIGKILL,
	// reap; the handle is then gone. A no-op for unknown handles.
	OpProcClose = "proc_close"
	// OpProcStream (own stream, ProcStreamReq) replays one output of a
	// process from byte 0 and follows it: Response, then Chunk frames, then
	// an EOF chunk once the process exited and the output is drained.
	OpProcStream = "proc_stream"

	// OpTailFile (own stream, TailFileReq) follows a file: Response, then a
	// Chunk per read, never EOF; the host ends it by closing the stream.
	OpTailFile = "tail_file"
	// OpFdStream (own stream, FdStreamReq) reads an agent fd: Response,
	// Chunks, and an EOF chunk when a non-regular fd reads 0 bytes.
	// Regular files are followed like tail_file.
	OpFdStream = "fd_stream"
	// OpFileTail (own stream, HandleReq) follows an open file handle from
	// its current cursor like tail_file (the handle's cursor is not moved).
	OpFileTail = "file_tail"

	// OpSyscall runs SyscallReq on an agent thread that ends with the call
	// (a batch: one thread for all its ops).
	OpSyscall = "syscall"
	// OpSyscallAsync runs SyscallReq on a new thread and answers
	// PendingResp at once.
	OpSyscallAsync = "syscall_async"
	// OpSyscallAwait waits for a pending syscall (AwaitReq → AwaitResp).
	OpSyscallAwait = "syscall_await"
	// OpSyscallDone reports whether a pending syscall finished
	// (PendingReq → DoneResp), non-blocking.
	OpSyscallDone = "syscall_done"
	// OpIoctl runs IoctlReq like OpSyscall.
	OpIoctl = "ioctl"
	// OpReadMem reads the agent's own memory (ReadMemReq → ReadMemResp).
	OpReadMem = "read_mem"

	// OpWorkerSpawn (own stream, Empty) starts a worker process and answers
	// WorkerSpawnResp; the stream then carries the worker's own session
	// (sync handshake, yamux, Hello: the same protocol as the agent's).
	OpWorkerSpawn = "worker_spawn"
	// OpWorkerKill (worker sessions only, SignalReq) sends the signal to
	// the worker process itself (not its children); a worker process that
	// already exited is no error.
	OpWorkerKill = "worker_kill"
	// OpWorkerJoin (worker sessions only, Empty → WorkerJoinResp) ends the
	// worker process (its channel closes; it kills its children and exits,
	// or is killed if it lingers), reaps it and answers its exit status.
	// Every later op of the session fails.
	OpWorkerJoin = "worker_join"
	// OpWorkerShutdown (worker sessions only, Empty) terminates the
	// worker's children (SIGTERM, up to 2 s, SIGKILL); the host then closes
	// the session and the worker exits.
	OpWorkerShutdown = "worker_shutdown"
	// OpWorkerExe (WorkerExeReq → Empty) gives an agent whose image has no
	// provium-worker beside it the host's copy; the agent keeps it in a
	// sealed memfd for its lifetime and starts workers from it. The host
	// sends it after an OpWorkerSpawn failed with NoWorkerExe.
	OpWorkerExe = "worker_exe"

	// OpClockGet answers ClockResp with CLOCK_REALTIME in ns.
	OpClockGet = "clock_get"
	// OpClockSet sets CLOCK_REALTIME (ClockReq).
	OpClockSet = "clock_set"
	// OpClockAdvance moves CLOCK_REALTIME by a signed amount (ClockReq).
	OpClockAdvance = "clock_advance"
	// OpClockSleep sleeps on the guest monotonic clock (ClockReq).
	OpClockSleep = "clock_sleep"
)

// Process statuses reported by proc_status (a finished process reports the
// StatusExited/StatusSignalled of its result; a timed-out one signalled).
const (
	StatusRunning = "running"
)

// ProcStartResp names a started process.
type ProcStartResp struct {
	Handle uint64 `msgpack:"handle"`
	Pid    int    `msgpack:"pid"`
}

// ProcWaitReq waits for a process; TimeoutMs 0 means forever. On expiry the
// process group is SIGKILLed and the result is StatusTimedOut; every later
// wait returns the same result.
type ProcWaitReq struct {
	Handle    uint64 `msgpack:"handle"`
	TimeoutMs int64  `msgpack:"timeout_ms,omitempty"`
}

// ProcStatusResp is a process's state and live pid.
type ProcStatusResp struct {
	Status string `msgpack:"status"`
	Pid    int    `msgpack:"pid"`
}

// ProcSignalReq sends Signal (any number) to a running process.
type ProcSignalReq struct {
	Handle uint64 `msgpack:"handle"`
	Signal int    `msgpack:"signal"`
}

// ProcStdinReq writes Data to a process's stdin.
type ProcStdinReq struct {
	Handle uint64 `msgpack:"handle"`
	Data   []byte `msgpack:"data"`
}

// Process output names for ProcStreamReq.
const (
	OutputStdout = "stdout"
	OutputStderr = "stderr"
)

// ProcStreamReq subscribes to one output of a process.
type ProcStreamReq struct {
	Handle uint64 `msgpack:"handle"`
	Output string `msgpack:"output"`
}

// Tail start modes.
const (
	TailEnd       = "end"
	TailBeginning = "beginning"
	TailOffset    = "offset"
)

// TailFileReq follows a file from a start point: TailEnd (new bytes only),
// TailBeginning (byte 0), or TailOffset with Offset ≥ 0 (absolute) or < 0
// (that many bytes before the current end, floored at 0).
type TailFileReq struct {
	Path   string `msgpack:"path"`
	Start  string `msgpack:"start"`
	Offset int64  `msgpack:"offset,omitempty"`
}

// FdStreamReq reads from a kernel fd of the agent (or worker) process.
type FdStreamReq struct {
	Fd int `msgpack:"fd"`
}

// SyscallNested asks the agent to write the 8-byte little-endian address
// of Bufs[Child] into Bufs[Parent] at byte Offset before the call (0-based
// buffer indexes).
type SyscallNested struct {
	Parent int `msgpack:"parent"`
	Child  int `msgpack:"child"`
	Offset int `msgpack:"offset"`
}

// SyscallReq is one raw system call. Bufs are copied into agent memory for
// the call; Ptrs[i] is the argument slot (0..5) that receives Bufs[i]'s
// address (Ptrs may be shorter than Bufs); Nested writes are applied in
// order before the call.
type SyscallReq struct {
	Nr     int64           `msgpack:"nr"`
	Args   [6]uint64       `msgpack:"args"`
	Bufs   [][]byte        `msgpack:"bufs,omitempty"`
	Ptrs   []int           `msgpack:"ptrs,omitempty"`
	Nested []SyscallNested `msgpack:"nested,omitempty"`
}

// SyscallResult is a call's raw result (-1 on failure), its errno (0 on
// success) and every buffer's content after the call.
type SyscallResult struct {
	Ret     int64    `msgpack:"ret"`
	Errno   int      `msgpack:"errno"`
	OutBufs [][]byte `msgpack:"out_bufs"`
}

// PendingResp names a syscall_async call.
type PendingResp struct {
	ID uint64 `msgpack:"id"`
}

// PendingReq addresses a syscall_async call.
type PendingReq struct {
	ID uint64 `msgpack:"id"`
}

// AwaitReq waits for a pending call; TimeoutMs 0 means forever.
type AwaitReq struct {
	ID        uint64 `msgpack:"id"`
	TimeoutMs int64  `msgpack:"timeout_ms,omitempty"`
}

// AwaitResp is the result when Done, else the wait timed out (the call is
// still pending and may be awaited again). A call can be awaited to
// completion once; later awaits fail.
type AwaitResp struct {
	Done   bool           `msgpack:"done"`
	Result *SyscallResult `msgpack:"result,omitempty"`
}

// DoneResp answers syscall_done.
type DoneResp struct {
	Done bool `msgpack:"done"`
}

// IoctlReq is ioctl(Fd, Cmd, &Data) (arg 3 is 0 when Data is nil). Bufs
// are extra buffers whose addresses are written (8 bytes, little-endian)
// into Data at PtrOffsets[i].
type IoctlReq struct {
	Fd         int      `msgpack:"fd"`
	Cmd        uint64   `msgpack:"cmd"`
	Data       []byte   `msgpack:"data,omitempty"`
	Bufs       [][]byte `msgpack:"bufs,omitempty"`
	PtrOffsets []int    `msgpack:"ptr_offsets,omitempty"`
}

// IoctlResp is the ioctl's result and the buffers after the call.
type IoctlResp struct {
	Ret     int64    `msgpack:"ret"`
	Errno   int      `msgpack:"errno"`
	OutData []byte   `msgpack:"out_data"`
	OutBufs [][]byte `msgpack:"out_bufs"`
}

// MaxReadMem bounds one read_mem.
const MaxReadMem = 16 << 20

// ReadMemReq reads Len bytes at Addr in the agent's address space.
type ReadMemReq struct {
	Addr uint64 `msgpack:"addr"`
	Len  int    `msgpack:"len"`
}

// ReadMemResp is the memory read, or Errno when it was unreadable.
type ReadMemResp struct {
	Data  []byte `msgpack:"data,omitempty"`
	Errno int    `msgpack:"errno,omitempty"`
}

// WorkerSpawnResp names a started worker process.
type WorkerSpawnResp struct {
	Pid int `msgpack:"pid"`
}

// WorkerJoinResp is a joined worker process's exit status: its exit code,
// or 128 + the signal that ended it.
type WorkerJoinResp struct {
	Status int `msgpack:"status"`
}

// WorkerExeReq carries the worker executor binary (a static ELF file).
type WorkerExeReq struct {
	Content []byte `msgpack:"content"`
}

// NoWorkerExe starts the message of an OpWorkerSpawn that found no worker
// executor (ENOENT): the host answers it with OpWorkerExe.
const NoWorkerExe = "worker_spawn: no worker executor"

// SignalReq carries a signal number.
type SignalReq struct {
	Signal int `msgpack:"signal"`
}

// ClockReq carries nanoseconds: an absolute CLOCK_REALTIME time (set), a
// signed jump (advance) or a duration (sleep).
type ClockReq struct {
	Ns int64 `msgpack:"ns"`
}

// ClockResp is CLOCK_REALTIME in ns since the epoch.
type ClockResp struct {
	Ns int64 `msgpack:"ns"`
}
