package cli

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provium/provium/internal/coverage"
	"github.com/provium/provium/internal/events"
)

// A client of --events-socket stays connected across --watch iterations
// and sees each run; provium-coverage --from-socket reports each run's end.
func TestEventsSocketAcrossWatchIterations(t *testing.T) {
	dir := writeTree(t, map[string]string{"a.test.lua": `test("a", {spec = "s1"}, function(t) end)`})
	in := newInvocation(t, dir)
	sock := filepath.Join(in.vars["XDG_RUNTIME_DIR"], "w.sock")
	var out, errb syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- Execute(ctx, in.env(&out, &errb), []string{"--watch", "--events-socket", sock, "--save-events", "ev.bin"})
	}()
	defer func() {
		cancel()
		<-done
		if _, err := os.Stat(sock); !os.IsNotExist(err) {
			t.Errorf("socket left behind: %v", err)
		}
	}()
	waitFor(t, "the first run", func() bool { return strings.Contains(out.String(), "1 file(s); 1 passed") })

	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got syncBuffer
	go io.Copy(&got, conn)
	var covOut, covErr syncBuffer
	covDone := make(chan int, 1)
	go func() { covDone <- coverage.Main([]string{"--from-socket", sock}, nil, &covOut, &covErr) }()

	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("b.test.lua", `test("b", {spec = "s2"}, function(t) t:fail("no") end)`)
	waitFor(t, "the second run", func() bool { return strings.Contains(out.String(), "2 file(s); 1 passed, 1 failed") })
	write("c.test.lua", `test("c", function(t) end)`)
	waitFor(t, "the third run", func() bool { return strings.Contains(out.String(), "3 file(s); 2 passed, 1 failed") })
	waitFor(t, "the client to see the third run's end", func() bool {
		evs := readEvents(t, []byte(got.String()))
		n := 0
		for _, ev := range evs {
			if p, ok := ev.Payload.(events.FileCompleted); ok && p.Path == "c.test.lua" {
				n++
			}
		}
		return n == 1
	})
	evs := readEvents(t, []byte(got.String()))
	runs := 0
	var run []events.Event
	for i, ev := range evs {
		run = append(run, ev)
		if _, ok := ev.Payload.(events.FileDiscovered); ok && i > 0 {
			if _, prev := evs[i-1].Payload.(events.FileDiscovered); !prev {
				checkOrdering(t, run[:len(run)-1])
				run = run[len(run)-1:]
				runs++
			}
		}
	}
	if runs < 1 {
		t.Fatalf("the client saw %d run boundaries in %d events", runs, len(evs))
	}
	waitFor(t, "provium-coverage's two reports", func() bool { return strings.Count(covOut.String(), "coverage by `spec`") >= 2 })
	if !strings.Contains(covOut.String(), "  s2             0       1       0       1\n") {
		t.Errorf("coverage reports:\n%s", covOut.String())
	}
	// The saved file holds only the last iteration (truncated per run).
	b, err := os.ReadFile(filepath.Join(dir, "ev.bin"))
	if err != nil {
		t.Fatal(err)
	}
	discovered := 0
	for _, ev := range readEvents(t, b) {
		if _, ok := ev.Payload.(events.FileDiscovered); ok {
			discovered++
		}
	}
	if discovered != 3 {
		t.Errorf("--save-events holds %d file_discovered, want the last run's 3", discovered)
	}
}

func TestEventsStdoutMovesResultsAndConflictsWithJSON(t *testing.T) {
	dir := writeTree(t, map[string]string{"a.test.lua": `test("a", function(t) end)`})
	in := newInvocation(t, dir)
	code, out, errs := in.exec("--events-stdout")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "1 file(s); 1 passed") {
		t.Errorf("summary not on stderr: %q", errs)
	}
	evs := readEvents(t, []byte(out))
	checkOrdering(t, evs)
	kinds := map[string]bool{}
	for _, ev := range evs {
		kinds[ev.Kind] = true
	}
	for _, k := range []string{events.KindFileDiscovered, events.KindFileDispatched, events.KindTestStarted, events.KindTestPassed, events.KindFileCompleted, events.KindPoolState} {
		if !kinds[k] {
			t.Errorf("no %s on stdout", k)
		}
	}
	code, _, errs = in.exec("--events-stdout", "--json")
	if code != ExitUsage || !strings.Contains(errs, "provium: --json cannot be used with --events-stdout\n") {
		t.Fatalf("exit %d: %q", code, errs)
	}
	code, _, errs = in.exec("--save-events", "/nonexistent/dir/ev.bin")
	if code != ExitUsage || !strings.Contains(errs, "--save-events: cannot open `/nonexistent/dir/ev.bin`") {
		t.Fatalf("exit %d: %q", code, errs)
	}
}
