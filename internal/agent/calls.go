package agent

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/provium/provium/internal/proto"
)

// serveCalls runs the call stream (the hello stream, kept open): requests
// run concurrently, each answered with its ID once done. It returns when the
// host closes the stream or the session ends, after every call finished.
func (s *Server) serveCalls(ctx context.Context, endSession context.CancelFunc, sess *session, st *yamux.Stream) {
	ctx, cancelAll := context.WithCancel(ctx)
	var (
		wg      sync.WaitGroup
		wmu     sync.Mutex // one response frame at a time on the stream
		mu      sync.Mutex
		running = map[uint64]context.CancelFunc{}
	)
	defer func() {
		cancelAll()
		wg.Wait()
	}()
	run := callRunner(ctx, &wg, s.CallIdle)
	reply := func(resp proto.Response) {
		wmu.Lock()
		defer wmu.Unlock()
		if err := writeResponse(st, resp); err != nil {
			s.logf("agent: call %d: %v", resp.ID, err)
		}
	}
	for {
		raw, err := proto.ReadRawFrame(st)
		if err != nil {
			if err != io.EOF && ctx.Err() == nil {
				s.logf("agent: call stream: %v", err)
			}
			return
		}
		var req proto.Request
		if err := proto.Unmarshal(raw, &req); err != nil {
			// Without a readable ID there is no call to answer; the stream
			// is out of step, so end it rather than guess.
			s.logf("agent: call stream: %v", err)
			return
		}
		switch req.Op {
		case proto.OpCancel:
			var c proto.CancelReq
			if decodeBody(req, &c) == nil {
				mu.Lock()
				if cancel := running[c.ID]; cancel != nil {
					cancel()
				}
				mu.Unlock()
			}
			continue
		case proto.OpDetach:
			reply(proto.Response{ID: req.ID, Body: mustEmpty()})
			endSession()
			return
		}
		opCtx, cancel := context.WithCancel(ctx)
		mu.Lock()
		if prev := running[req.ID]; prev != nil {
			mu.Unlock()
			cancel()
			reply(proto.Response{ID: req.ID, Err: &proto.Error{Message: fmt.Sprintf("call id %d is already running", req.ID)}})
			continue
		}
		running[req.ID] = cancel
		mu.Unlock()
		run(func() {
			defer func() {
				mu.Lock()
				delete(running, req.ID)
				mu.Unlock()
				cancel()
			}()
			reply(s.runCall(opCtx, sess, req))
			s.afterReply(sess, req.Op)
		})
	}
}

// defaultCallIdle is Server.CallIdle's default.
const defaultCallIdle = 10 * time.Second

// callRunner runs each call on a goroutine of its own: an idle one when
// there is one, else a new one. Goroutines are kept for idleFor after
// their last call because a fresh goroutine regrows its stack through the
// decoder's reflection on every call, which under TCG was ~8% of the
// agent's time per call.
func callRunner(ctx context.Context, wg *sync.WaitGroup, idleFor time.Duration) func(job func()) {
	if idleFor <= 0 {
		idleFor = defaultCallIdle
	}
	jobs := make(chan func())
	return func(job func()) {
		select {
		case jobs <- job:
			return
		default:
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			job()
			idle := time.NewTimer(idleFor)
			defer idle.Stop()
			for {
				select {
				case j := <-jobs:
					j()
					idle.Reset(idleFor)
				case <-idle.C:
					return
				case <-ctx.Done():
					return
				}
			}
		}()
	}
}

// runCall runs one call, turning a handler panic into an error response:
// as PID 1's child the agent must stay up.
func (s *Server) runCall(ctx context.Context, sess *session, req proto.Request) (resp proto.Response) {
	resp.ID = req.ID
	defer func() {
		if r := recover(); r != nil {
			s.logf("agent: handler panic: %v", r)
			resp = proto.Response{ID: req.ID, Err: &proto.Error{Message: fmt.Sprintf("agent internal error: %v", r)}}
		}
	}()
	body, err := s.dispatch(ctx, sess, req)
	if err != nil {
		return proto.Response{ID: req.ID, Err: proto.ErrorFrom(err)}
	}
	b, err := proto.Marshal(body)
	if err != nil {
		return proto.Response{ID: req.ID, Err: proto.ErrorFrom(err)}
	}
	return proto.Response{ID: req.ID, Body: b}
}

func mustEmpty() []byte {
	b, _ := proto.Marshal(proto.Empty{})
	return b
}
