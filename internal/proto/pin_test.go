package proto

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"github.com/provium/provium/internal/pintest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

var update = flag.Bool("update", false, "write testdata/pin/v<ProtocolVersion>.hex if it does not exist yet")

type pinCase struct {
	name string
	msg  any
}

func raw(t *testing.T, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func u32(v uint32) *uint32 { return &v }

// pinCases lists every agent message with non-default fields so that any
// change of a field name, type or encoding shows up as a byte difference.
func pinCases(t *testing.T) []pinCase {
	return []pinCase{
		{"hello_req", &Request{Op: OpHello, Body: raw(t, HelloReq{Protocol: ProtocolVersion})}},
		{"hello", &Hello{Protocol: 1, AgentVersion: "0.1.0", Kernel: "6.1.0-18-amd64", GuestOS: "linux", Features: []string{"exec", "files"}}},
		{"hello_no_features", &Hello{Protocol: 1, AgentVersion: "x", Kernel: "k", GuestOS: "peios", Features: []string{}}},
		{"ping_req", &Request{Op: OpPing, Body: raw(t, Ping{Data: []byte("0123456789abcdef")})}},
		{"exec_shell_req", &Request{Op: OpExec, Body: raw(t, ExecReq{Cmd: "echo hi", Shell: true, Env: map[string]string{"B": "2", "A": "1"}, Cwd: "/tmp", Stdin: []byte{0, 1, 2}, TimeoutMs: 1500})}},
		{"exec_direct_req", &Request{Op: OpExec, Body: raw(t, ExecReq{Cmd: "ls", Args: []string{"-l", "/"}, EnvClear: true})}},
		{"exec_result_exited", &ExecResult{ExitCode: 3, Stdout: []byte("out\x00"), Stderr: []byte("err"), Status: StatusExited}},
		{"exec_result_signalled", &ExecResult{ExitCode: ExitCodeSignalled, Stdout: []byte{}, Stderr: []byte{}, Status: StatusSignalled, Signal: 9}},
		{"exec_result_timed_out", &ExecResult{ExitCode: ExitCodeTimedOut, Stdout: []byte("so far"), Stderr: []byte{}, Status: StatusTimedOut}},
		{"read_file_req", &Request{Op: OpReadFile, Body: raw(t, ReadFileReq{Path: "/etc/hostname"})}},
		{"read_file_resp_inline", &ReadFileResp{Data: []byte("a\x00b")}},
		{"read_file_resp_streamed", &ReadFileResp{Streamed: true, Size: 70 << 20}},
		{"write_file_req_inline", &Request{Op: OpWriteFile, Body: raw(t, WriteFileReq{Path: "/f", Data: []byte("xyz")})}},
		{"write_file_req_streamed_mode", &Request{Op: OpWriteFile, Body: raw(t, WriteFileReq{Path: "/f", Streamed: true, Mode: u32(0o755)})}},
		{"chunk_data", &Chunk{Data: []byte("chunk")}},
		{"chunk_eof", &Chunk{EOF: true}},
		{"chunk_err", &Chunk{Err: &Error{Errno: 5, Name: "EIO", Message: "Input/output error"}}},
		{"stat_req", &Request{Op: OpStat, Body: raw(t, PathReq{Path: "/x"})}},
		{"stat_resp", &StatResp{Size: 1 << 33, Mtime: 1700000000.25, MtimeNs: 1700000000250000000, Perm: 0o4755, EntryType: EntryFile}},
		{"listdir_req", &Request{Op: OpListdir, Body: raw(t, PathReq{Path: "/"})}},
		{"listdir_resp", &ListdirResp{Entries: []DirEntry{{Name: "a", EntryType: EntryDirectory}, {Name: "b", EntryType: EntrySymlink}}}},
		{"listdir_resp_empty", &ListdirResp{Entries: []DirEntry{}}},
		{"mkdir_req", &Request{Op: OpMkdir, Body: raw(t, MkdirReq{Path: "/a/b", Parents: true, Perm: u32(0o700)})}},
		{"unlink_req", &Request{Op: OpUnlink, Body: raw(t, PathReq{Path: "/a"})}},
		{"rename_req", &Request{Op: OpRename, Body: raw(t, RenameReq{From: "/a", To: "/b"})}},
		{"open_req", &Request{Op: OpOpen, Body: raw(t, OpenReq{Path: "/f", Mode: OpenRead | OpenWrite | OpenCreate | OpenTruncate | OpenAppend | OpenExclusive, Perm: 0o600})}},
		{"open_resp", &OpenResp{Handle: 7, Fd: 12}},
		{"file_read_req", &Request{Op: OpFileRead, Body: raw(t, FileReadReq{Handle: 7, N: 65536})}},
		{"data_resp", &DataResp{Data: []byte("data")}},
		{"file_write_req", &Request{Op: OpFileWrite, Body: raw(t, FileWriteReq{Handle: 7, Data: []byte("w")})}},
		{"count_resp", &CountResp{N: 1}},
		{"file_seek_req", &Request{Op: OpFileSeek, Body: raw(t, FileSeekReq{Handle: 7, Offset: -4, Whence: SeekEnd})}},
		{"offset_resp", &OffsetResp{Offset: 123456}},
		{"file_tell_req", &Request{Op: OpFileTell, Body: raw(t, HandleReq{Handle: 7})}},
		{"file_close_req", &Request{Op: OpFileClose, Body: raw(t, HandleReq{Handle: 7})}},
		{"batch_req", &Request{Op: OpBatch, Body: raw(t, BatchReq{Ops: []Request{
			{Op: OpStat, Body: raw(t, PathReq{Path: "/"})},
			{Op: OpUnlink, Body: raw(t, PathReq{Path: "/missing"})},
		}})}},
		{"batch_resp", &BatchResp{Results: []Response{
			{Body: raw(t, StatResp{Size: 4096, Perm: 0o755, EntryType: EntryDirectory})},
			{Err: ErrnoError(syscall.ENOENT)},
			{Body: raw(t, Empty{})},
		}}},
		{"detach_req", &Request{Op: OpDetach}},
		{"call_req", &Request{ID: 42, Op: OpStat, Body: raw(t, PathReq{Path: "/etc"})}},
		{"call_resp", &Response{ID: 42, Err: ErrnoError(syscall.ENOENT)}},
		{"cancel_req", &Request{ID: 43, Op: OpCancel, Body: raw(t, CancelReq{ID: 42})}},
		{"response_ok_empty", &Response{Body: raw(t, Empty{})}},
		{"response_err", &Response{Err: &Error{Errno: 2, Name: "ENOENT", Message: "No such file or directory"}}},
		{"response_err_plain", &Response{Err: &Error{Message: "unknown op `frob`"}}},
		{"proc_start_req", &Request{ID: 5, Op: OpProcStart, Body: raw(t, ExecReq{Cmd: "seq", Args: []string{"1", "3"}, Env: map[string]string{"A": "1"}, Stdin: []byte("in")})}},
		{"proc_start_resp", &ProcStartResp{Handle: 3, Pid: 412}},
		{"proc_wait_req", &Request{Op: OpProcWait, Body: raw(t, ProcWaitReq{Handle: 3, TimeoutMs: 2500})}},
		{"proc_status_req", &Request{Op: OpProcStatus, Body: raw(t, HandleReq{Handle: 3})}},
		{"proc_status_resp", &ProcStatusResp{Status: StatusRunning, Pid: 412}},
		{"proc_signal_req", &Request{Op: OpProcSignal, Body: raw(t, ProcSignalReq{Handle: 3, Signal: 15})}},
		{"proc_stdin_req", &Request{Op: OpProcStdin, Body: raw(t, ProcStdinReq{Handle: 3, Data: []byte("line\n")})}},
		{"proc_close_stdin_req", &Request{Op: OpProcCloseStdin, Body: raw(t, HandleReq{Handle: 3})}},
		{"proc_close_req", &Request{Op: OpProcClose, Body: raw(t, HandleReq{Handle: 3})}},
		{"proc_stream_req", &Request{Op: OpProcStream, Body: raw(t, ProcStreamReq{Handle: 3, Output: OutputStderr})}},
		{"tail_file_req", &Request{Op: OpTailFile, Body: raw(t, TailFileReq{Path: "/var/log/x", Start: TailOffset, Offset: -100})}},
		{"tail_file_req_end", &Request{Op: OpTailFile, Body: raw(t, TailFileReq{Path: "/x", Start: TailEnd})}},
		{"fd_stream_req", &Request{Op: OpFdStream, Body: raw(t, FdStreamReq{Fd: 7})}},
		{"file_tail_req", &Request{Op: OpFileTail, Body: raw(t, HandleReq{Handle: 9})}},
		{"syscall_req", &Request{ID: 6, Op: OpSyscall, Body: raw(t, SyscallReq{Nr: 19, Args: [6]uint64{3, 0, 2, 0, 0, 1 << 63},
			Bufs: [][]byte{make([]byte, 32), []byte("ab")}, Ptrs: []int{1}, Nested: []SyscallNested{{Parent: 0, Child: 1, Offset: 16}}})}},
		{"syscall_result", &SyscallResult{Ret: -1, Errno: 9, OutBufs: [][]byte{{1, 2}, {}}}},
		{"syscall_async_req", &Request{Op: OpSyscallAsync, Body: raw(t, SyscallReq{Nr: 39})}},
		{"pending_resp", &PendingResp{ID: 11}},
		{"syscall_await_req", &Request{Op: OpSyscallAwait, Body: raw(t, AwaitReq{ID: 11, TimeoutMs: 100})}},
		{"await_resp_done", &AwaitResp{Done: true, Result: &SyscallResult{Ret: 0, Errno: 0, OutBufs: [][]byte{}}}},
		{"await_resp_pending", &AwaitResp{}},
		{"syscall_done_req", &Request{Op: OpSyscallDone, Body: raw(t, PendingReq{ID: 11})}},
		{"done_resp", &DoneResp{Done: true}},
		{"ioctl_req", &Request{Op: OpIoctl, Body: raw(t, IoctlReq{Fd: 4, Cmd: 0xc0185879, Data: make([]byte, 24), Bufs: [][]byte{[]byte("x")}, PtrOffsets: []int{8}})}},
		{"ioctl_resp", &IoctlResp{Ret: 0, Errno: 0, OutData: []byte{1}, OutBufs: [][]byte{[]byte("y")}}},
		{"read_mem_req", &Request{Op: OpReadMem, Body: raw(t, ReadMemReq{Addr: 0x7fff0000, Len: 4096})}},
		{"read_mem_resp", &ReadMemResp{Data: []byte{0xde, 0xad}}},
		{"read_mem_resp_errno", &ReadMemResp{Errno: 14}},
		{"worker_spawn_req", &Request{Op: OpWorkerSpawn, Body: raw(t, Empty{})}},
		{"worker_spawn_resp", &WorkerSpawnResp{Pid: 77}},
		{"worker_kill_req", &Request{Op: OpWorkerKill, Body: raw(t, SignalReq{Signal: 9})}},
		{"worker_join_req", &Request{Op: OpWorkerJoin, Body: raw(t, Empty{})}},
		{"worker_join_resp", &WorkerJoinResp{Status: 143}},
		{"worker_shutdown_req", &Request{Op: OpWorkerShutdown, Body: raw(t, Empty{})}},
		{"clock_get_req", &Request{Op: OpClockGet, Body: raw(t, Empty{})}},
		{"clock_resp", &ClockResp{Ns: 1700000000123456789}},
		{"clock_set_req", &Request{Op: OpClockSet, Body: raw(t, ClockReq{Ns: -5})}},
		{"clock_advance_req", &Request{Op: OpClockAdvance, Body: raw(t, ClockReq{Ns: -3600000000000})}},
		{"clock_sleep_req", &Request{Op: OpClockSleep, Body: raw(t, ClockReq{Ns: 1500000})}},
		{"net_config_req", &Request{Op: OpNetConfig, Body: raw(t, NetConfigReq{
			Ifaces: []NetIface{{MAC: "02:50:00:01:00:01", Address: "10.64.0.2/24"}, {MAC: "02:50:00:02:00:01", Previous: "02:50:00:09:00:01"}},
			Hosts:  []HostEntry{{Address: "10.64.0.3", Name: "b.lan"}}, Gateway: "10.64.0.1", DNS: []string{"10.64.0.1"}, WaitMs: 10000})}},
		{"net_config_resp", &NetConfigResp{Ifnames: []string{"eth0", "eth1"}}},
	}
}

func encodeFrame(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteFrame(&buf, v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func goldenPath() string {
	return filepath.Join("testdata", "pin", fmt.Sprintf("v%d.hex", ProtocolVersion))
}

func readGolden(t *testing.T) map[string][]byte {
	t.Helper()
	return pintest.ReadGolden(t, goldenPath())
}

func TestPin(t *testing.T) {
	cases := pinCases(t)
	if *update {
		if _, err := os.Stat(goldenPath()); err == nil {
			t.Fatalf("%s exists: an encoding change needs a ProtocolVersion bump, not -update", goldenPath())
		}
		var b strings.Builder
		fmt.Fprintf(&b, "# provium host<->agent wire, protocol v%d: one frame per message\n", ProtocolVersion)
		for _, c := range cases {
			fmt.Fprintf(&b, "%s %s\n", c.name, hex.EncodeToString(encodeFrame(t, c.msg)))
		}
		if err := os.WriteFile(goldenPath(), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden := readGolden(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, ok := golden[c.name]
			if !ok {
				t.Fatalf("no golden for %s: a new message needs a ProtocolVersion bump", c.name)
			}
			got := encodeFrame(t, c.msg)
			if !bytes.Equal(got, want) {
				t.Fatalf("encoding changed:\n got %x\nwant %x", got, want)
			}
			// Decoding the pinned bytes must give back the same value.
			dec := reflect.New(reflect.TypeOf(c.msg).Elem()).Interface()
			if err := ReadFrame(bytes.NewReader(want), dec); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dec, c.msg) {
				t.Fatalf("decode mismatch:\n got %#v\nwant %#v", dec, c.msg)
			}
		})
	}
	if len(golden) != len(cases) {
		t.Fatalf("golden has %d entries, test has %d", len(golden), len(cases))
	}
}
