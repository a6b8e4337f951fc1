package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// reraiseGrace bounds the wait for a re-raised signal to take effect.
const reraiseGrace = 5 * time.Second

// Main runs the real process: it turns the first SIGINT/SIGTERM into a
// cancelled run (teardown, summary, rerun state and --junit still happen),
// then re-raises that signal so the parent sees how provium ended. A
// second signal gets the default action at once.
func Main(args []string) int {
	env, err := OSEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%scurrent directory: %v\n", exitPrefix, err)
		return ExitUsage
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	got := make(chan os.Signal, 1)
	stop := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case s := <-sigs:
			signal.Stop(sigs)
			got <- s
			cancel()
		case <-stop:
		}
	}()

	var keepWaited atomic.Bool
	env.keepWaited = &keepWaited
	code := Execute(ctx, env, args)
	close(stop)
	<-watcherDone
	signal.Stop(sigs)

	select {
	case s := <-got:
		if keepWaited.Load() {
			// The signal ended the --keep-failed wait: exit with the run's code.
			return code
		}
		if sig, ok := s.(syscall.Signal); ok {
			signal.Reset(sig)
			_ = syscall.Kill(os.Getpid(), sig)
			// Delivery is asynchronous: give the default action time to
			// end the process before falling back to the exit code.
			time.Sleep(reraiseGrace)
		}
	default:
	}
	return code
}
