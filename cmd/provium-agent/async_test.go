package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/provium/provium/internal/agentclient"
	"github.com/provium/provium/internal/proto"
)

func timespec(d time.Duration) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, uint64(d/time.Second))
	binary.LittleEndian.PutUint64(b[8:], uint64(d%time.Second))
	return b
}

func nanosleep(d time.Duration) proto.SyscallReq {
	return proto.SyscallReq{Nr: unix.SYS_NANOSLEEP, Bufs: [][]byte{timespec(d)}, Ptrs: []int{0}}
}

// guestCount runs a shell snippet printing one integer.
func guestCount(t *testing.T, ctx context.Context, c *agentclient.Client, script string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(sh(t, ctx, c, script)))
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	return n
}

// TestAsyncOpsUnderQEMU exercises processes, syscalls, workers and the
// clock in a real guest (one boot for all of them).
func TestAsyncOpsUnderQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a guest")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	res := guestImage(t, ctx)
	agentBin := buildAgent(t)
	v := bootAgentVM(t, ctx, res, agentBin, proto.BootInfo{VMName: "asyncvm"})
	c := v.connect(t, ctx)
	defer c.Close()

	t.Run("an fd opened by a syscall stays for later calls", func(t *testing.T) {
		if err := c.WriteFile(ctx, "/tmp/sys", []byte("hello world")); err != nil {
			t.Fatal(err)
		}
		r, err := c.Syscall(ctx, proto.SyscallReq{Nr: unix.SYS_OPENAT,
			Args: [6]uint64{uint64(0xffffffffffffff9c), 0, unix.O_RDONLY | unix.O_CLOEXEC},
			Bufs: [][]byte{[]byte("/tmp/sys\x00")}, Ptrs: []int{1}})
		if err != nil || r.Ret < 0 {
			t.Fatalf("openat: %+v %v", r, err)
		}
		fd := uint64(r.Ret)
		r, err = c.Syscall(ctx, proto.SyscallReq{Nr: unix.SYS_READ, Args: [6]uint64{fd, 0, 5}, Bufs: [][]byte{make([]byte, 5)}, Ptrs: []int{1}})
		if err != nil || r.Ret != 5 || string(r.OutBufs[0]) != "hello" {
			t.Fatalf("read: %+v %v", r, err)
		}
		iov := make([]byte, 32)
		binary.LittleEndian.PutUint64(iov[8:], 3)
		binary.LittleEndian.PutUint64(iov[24:], 3)
		r, err = c.Syscall(ctx, proto.SyscallReq{Nr: unix.SYS_READV, Args: [6]uint64{fd, 0, 2},
			Bufs: [][]byte{iov, make([]byte, 3), make([]byte, 3)}, Ptrs: []int{1},
			Nested: []proto.SyscallNested{{Parent: 0, Child: 1}, {Parent: 0, Child: 2, Offset: 16}}})
		if err != nil || r.Ret != 6 || string(r.OutBufs[1])+string(r.OutBufs[2]) != " world" {
			t.Fatalf("readv: %+v %v", r, err)
		}
		// The fd is the agent's: fd_stream can read it too (regular file:
		// followed from its cursor, which is at the end now).
		c.Syscall(ctx, proto.SyscallReq{Nr: unix.SYS_LSEEK, Args: [6]uint64{fd, 6, 0}})
		s, err := c.FdStream(ctx, int(fd))
		if err != nil {
			t.Fatal(err)
		}
		if b, err := s.Next(ctx); err != nil || string(b) != "world" {
			t.Fatalf("fd_stream: %q %v", b, err)
		}
		s.Close()
		c.Syscall(ctx, proto.SyscallReq{Nr: unix.SYS_CLOSE, Args: [6]uint64{fd}})
	})

	t.Run("10000 lines stream", func(t *testing.T) {
		const lines = 10000
		var want bytes.Buffer
		for i := 1; i <= lines; i++ {
			fmt.Fprintf(&want, "%d\n", i)
		}
		p, err := c.Start(ctx, proto.ExecReq{Cmd: fmt.Sprintf("read go; seq 1 %d", lines), Shell: true})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(ctx)
		s, err := p.Stdout(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := p.WriteStdin(ctx, []byte("go\n")); err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		frames := 0
		for {
			b, err := s.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("after %d bytes: %v", got.Len(), err)
			}
			frames++
			got.Write(b)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("stream: %d bytes, want %d", got.Len(), want.Len())
		}
		t.Logf("%d lines in %d frames", lines, frames)
	})

	t.Run("tail_file follows", func(t *testing.T) {
		sh(t, ctx, c, "printf 'old\\n' > /tmp/log")
		s, err := c.TailFile(ctx, "/tmp/log", proto.TailEnd, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		sh(t, ctx, c, "echo new >> /tmp/log")
		if b, err := s.Next(ctx); err != nil || string(b) != "new\n" {
			t.Fatalf("tail: %q %v", b, err)
		}
	})

	t.Run("clock advance moves date back an hour", func(t *testing.T) {
		before := guestCount(t, ctx, c, "date +%s")
		if err := c.ClockAdvance(ctx, -int64(time.Hour)); err != nil {
			t.Fatal(err)
		}
		after := guestCount(t, ctx, c, "date +%s")
		if d := before - after; d < 3600-60 || d > 3600+1 {
			t.Fatalf("date went from %d to %d (moved back %d s)", before, after, d)
		}
		ns, err := c.ClockGet(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ClockSet(ctx, ns+int64(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if now := guestCount(t, ctx, c, "date +%s"); now < before {
			t.Fatalf("clock_set: date %d, before the test %d", now, before)
		}
	})

	t.Run("workers run blocking syscalls concurrently", func(t *testing.T) {
		const d = 1500 * time.Millisecond
		w1, err := c.SpawnWorker(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer w1.Close(ctx)
		w2, err := c.SpawnWorker(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer w2.Close(ctx)
		start := time.Now()
		if r, err := w1.Syscall(ctx, nanosleep(d)); err != nil || r.Ret != 0 {
			t.Fatalf("single: %+v %v", r, err)
		}
		single := time.Since(start)
		start = time.Now()
		var wg sync.WaitGroup
		for _, w := range []*agentclient.Worker{w1, w2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if r, err := w.Syscall(ctx, nanosleep(d)); err != nil || r.Ret != 0 {
					t.Errorf("worker %d: %+v %v", w.Pid(), r, err)
				}
			}()
		}
		wg.Wait()
		both := time.Since(start)
		t.Logf("one blocking syscall %v, two on two workers %v", single, both)
		if both > single*18/10 {
			t.Fatalf("two workers took %v, one took %v", both, single)
		}
		// syscall_async in a worker runs on a new worker thread.
		p, err := w1.SyscallAsync(ctx, nanosleep(200*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if r, err := p.Await(ctx, 0); err != nil || r.Ret != 0 {
			t.Fatalf("worker async: %+v %v", r, err)
		}
	})

	t.Run("no leak after 1000 process cycles", func(t *testing.T) {
		r, err := c.Syscall(ctx, proto.SyscallReq{Nr: unix.SYS_GETPID})
		if err != nil {
			t.Fatal(err)
		}
		agentPid := r.Ret
		count := fmt.Sprintf("ls -d /proc/[0-9]* | wc -l; ls /proc/%d/fd | wc -l; grep Threads /proc/%d/status | tr -dc 0-9", agentPid, agentPid)
		snapshot := func() []string { return strings.Fields(sh(t, ctx, c, count)) }
		before := snapshot()
		start := time.Now()
		for i := 0; i < 1000; i++ {
			req := proto.ExecReq{Cmd: "true"}
			if i%2 == 1 {
				req = proto.ExecReq{Cmd: "sleep", Args: []string{"30"}}
			}
			p, err := c.Start(ctx, req)
			if err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			}
			if err := p.Close(ctx); err != nil {
				t.Fatalf("cycle %d: %v", i, err)
			}
		}
		t.Logf("1000 start/close cycles in %v", time.Since(start))
		after := snapshot()
		t.Logf("processes, agent fds, agent threads: before %v after %v", before, after)
		for k, what := range []string{"guest processes", "agent fds"} {
			b, _ := strconv.Atoi(before[k])
			a, _ := strconv.Atoi(after[k])
			if a > b {
				t.Errorf("leak: %s %d -> %d", what, b, a)
			}
		}
	})
}
