package vmm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// QMP is a minimal client of QEMU's machine protocol.
//
// Why our own rather than github.com/digitalocean/go-qemu/qmp: that client
// takes no context (a wedged QEMU blocks the caller forever), its event
// stream is a side channel that drops events arriving between commands, and
// it offers no fd passing (SCM_RIGHTS for `getfd`, which the portable
// snapshot path needs). The protocol is a few JSON lines; owning it keeps
// timeouts, ordering (events before the exit they announce) and errors in our
// hands.
//
// One reader goroutine owns the connection's read side; it ends when the
// connection closes (Close, or QEMU exiting) and then closes Events().
type QMP struct {
	conn net.Conn

	writeMu sync.Mutex // serialises whole commands on the wire

	mu      sync.Mutex
	nextID  uint64
	pending map[string]chan qmpResponse
	readErr error

	events chan Event
	closed chan struct{} // closed by Close
	done   chan struct{} // closed when the reader has ended
	once   sync.Once
}

// Event is an asynchronous QMP event (SHUTDOWN, RESET, STOP, RESUME,
// GUEST_PANICKED, …).
type Event struct {
	Name      string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
}

// Time is when QEMU emitted the event.
func (e Event) Time() time.Time {
	return time.Unix(e.Timestamp.Seconds, e.Timestamp.Microseconds*1000)
}

// QMPError is an error reply from QEMU.
type QMPError struct {
	Command string
	Class   string `json:"class"`
	Desc    string `json:"desc"`
}

func (e *QMPError) Error() string {
	return fmt.Sprintf("qmp %s: %s (%s)", e.Command, e.Desc, e.Class)
}

// ErrQMPClosed is returned for commands on a connection that has ended.
var ErrQMPClosed = errors.New("qmp: connection closed")

type qmpResponse struct {
	Return json.RawMessage `json:"return"`
	Error  *QMPError       `json:"error"`
	ID     string          `json:"id"`
}

type qmpMessage struct {
	qmpResponse
	Event
	Greeting json.RawMessage `json:"QMP"`
}

// eventBuffer is large enough that a consumer which keeps up never stalls
// the reader; a consumer must drain Events() or commands stop completing.
const eventBuffer = 256

// DialQMP connects to a QMP unix socket, reads the greeting and negotiates
// capabilities, all within ctx.
func DialQMP(ctx context.Context, path string) (*QMP, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp: connecting to %s: %w", path, err)
	}
	q, err := newQMP(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

func newQMP(ctx context.Context, conn net.Conn) (*QMP, error) {
	r := bufio.NewReader(conn)
	// The greeting is read synchronously, before the reader goroutine exists;
	// a deadline bounds it by ctx.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	line, err := r.ReadBytes('\n')
	stop()
	conn.SetReadDeadline(time.Time{})
	if err != nil {
		return nil, fmt.Errorf("qmp: reading greeting: %w", err)
	}
	var m qmpMessage
	if err := json.Unmarshal(line, &m); err != nil || m.Greeting == nil {
		return nil, fmt.Errorf("qmp: unexpected greeting %q", line)
	}
	q := &QMP{
		conn:    conn,
		pending: make(map[string]chan qmpResponse),
		events:  make(chan Event, eventBuffer),
		closed:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	go q.readLoop(r)
	if _, err := q.Execute(ctx, "qmp_capabilities", nil); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

func (q *QMP) readLoop(r *bufio.Reader) {
	defer close(q.done)
	defer close(q.events)
	var err error
	for {
		var line []byte
		line, err = r.ReadBytes('\n')
		if err != nil {
			break
		}
		var m qmpMessage
		if jerr := json.Unmarshal(line, &m); jerr != nil {
			err = fmt.Errorf("qmp: undecodable message %q: %w", line, jerr)
			break
		}
		if m.Event.Name != "" {
			select {
			case q.events <- m.Event:
			case <-q.closed:
				err = ErrQMPClosed
			}
			if err != nil {
				break
			}
			continue
		}
		q.mu.Lock()
		ch := q.pending[m.ID]
		delete(q.pending, m.ID)
		q.mu.Unlock()
		if ch != nil {
			ch <- m.qmpResponse // buffered: never blocks
		}
	}
	q.mu.Lock()
	q.readErr = err
	for id, ch := range q.pending {
		close(ch)
		delete(q.pending, id)
	}
	q.mu.Unlock()
}

// Execute runs one command and returns its "return" value. args is marshalled
// as the command's arguments (nil for none).
func (q *QMP) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	return q.execute(ctx, command, args, nil)
}

// ExecuteWithFile runs a command with f's descriptor attached (SCM_RIGHTS),
// as `getfd` and `add-fd` expect. f may be closed once it returns.
func (q *QMP) ExecuteWithFile(ctx context.Context, command string, args any, f *os.File) (json.RawMessage, error) {
	return q.execute(ctx, command, args, unix.UnixRights(int(f.Fd())))
}

func (q *QMP) execute(ctx context.Context, command string, args any, oob []byte) (json.RawMessage, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	q.mu.Lock()
	if q.readErr != nil || isClosed(q.done) {
		q.mu.Unlock()
		return nil, fmt.Errorf("qmp %s: %w", command, ErrQMPClosed)
	}
	q.nextID++
	id := fmt.Sprintf("p%d", q.nextID)
	ch := make(chan qmpResponse, 1)
	q.pending[id] = ch
	q.mu.Unlock()

	msg := map[string]any{"execute": command, "id": id}
	if args != nil {
		msg["arguments"] = args
	}
	b, err := json.Marshal(msg)
	if err != nil {
		q.forget(id)
		return nil, fmt.Errorf("qmp %s: encoding arguments: %w", command, err)
	}
	if err := q.write(ctx, append(b, '\n'), oob); err != nil {
		q.forget(id)
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	select {
	case resp, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("qmp %s: %w", command, ErrQMPClosed)
		}
		if resp.Error != nil {
			resp.Error.Command = command
			return nil, resp.Error
		}
		return resp.Return, nil
	case <-ctx.Done():
		q.forget(id)
		return nil, fmt.Errorf("qmp %s: %w", command, ctx.Err())
	}
}

func (q *QMP) write(ctx context.Context, b, oob []byte) error {
	q.writeMu.Lock()
	defer q.writeMu.Unlock()
	if dl, ok := ctx.Deadline(); ok {
		q.conn.SetWriteDeadline(dl)
		defer q.conn.SetWriteDeadline(time.Time{})
	}
	if oob == nil {
		_, err := q.conn.Write(b)
		return err
	}
	uc, ok := q.conn.(*net.UnixConn)
	if !ok {
		return errors.New("passing a file needs a unix socket")
	}
	// One sendmsg: QEMU attaches the descriptor to the command it arrives with.
	_, _, err := uc.WriteMsgUnix(b, oob, nil)
	return err
}

func (q *QMP) forget(id string) {
	q.mu.Lock()
	delete(q.pending, id)
	q.mu.Unlock()
}

// Events delivers QEMU's events in order. It is closed when the connection
// ends, after the last event QEMU sent.
func (q *QMP) Events() <-chan Event { return q.events }

// Done is closed once the connection has ended and every event was delivered
// to the Events channel's buffer.
func (q *QMP) Done() <-chan struct{} { return q.done }

// Close ends the connection and waits for the reader goroutine.
func (q *QMP) Close() error {
	var err error
	q.once.Do(func() {
		close(q.closed)
		err = q.conn.Close()
	})
	<-q.done
	return err
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
