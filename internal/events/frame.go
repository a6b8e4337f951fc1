package events

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
)

// MaxFrameSize is the largest body a reader accepts (C1).
const MaxFrameSize = 128 << 20

// ErrFrameTooLarge is a reader's refusal of a longer body.
var ErrFrameTooLarge = errors.New("frame too large")

// ErrTornFrame reports input that ended inside a frame.
var ErrTornFrame = errors.New("the last frame is incomplete (torn)")

// Event is one decoded frame. Payload is a value of the kind's struct
// (FileDiscovered, TestFailed, …), or nil for a kind this version does
// not know.
type Event struct {
	TS      int64 // ns since the Unix epoch, host clock
	Kind    string
	Payload Payload
}

// Encode returns the frame of one event: 4-byte big-endian body length,
// then the body map {ts, kind, payload} in that order.
func Encode(ts int64, p Payload) ([]byte, error) {
	buf := bytes.NewBuffer(make([]byte, 4, 128))
	enc := msgpack.NewEncoder(buf)
	enc.UseCompactInts(true)
	enc.SetSortMapKeys(true)
	if err := enc.EncodeMapLen(3); err != nil {
		return nil, err
	}
	_ = enc.EncodeString("ts")
	_ = enc.EncodeInt(ts)
	_ = enc.EncodeString("kind")
	_ = enc.EncodeString(p.Kind())
	_ = enc.EncodeString("payload")
	if err := enc.Encode(normalize(p)); err != nil {
		return nil, fmt.Errorf("events: encode %s: %w", p.Kind(), err)
	}
	frame := buf.Bytes()
	n := len(frame) - 4
	if n > MaxFrameSize {
		return nil, fmt.Errorf("events: %s: %w (%d bytes)", p.Kind(), ErrFrameTooLarge, n)
	}
	binary.BigEndian.PutUint32(frame[:4], uint32(n))
	return frame, nil
}

// normalize fills what the wire never leaves nil: arrays (empty = 0x90)
// and meta (always a map).
func normalize(p Payload) Payload {
	switch x := p.(type) {
	case FileDiscovered:
		if x.FixtureRefs == nil {
			x.FixtureRefs = []string{}
		}
		return x
	case TestStarted:
		x.Meta = nonNil(x.Meta)
		return x
	case TestSkipped:
		x.Meta = nonNil(x.Meta)
		return x
	case TestPassed:
		x.Meta = nonNil(x.Meta)
		return x
	case TestFailed:
		x.Meta = nonNil(x.Meta)
		return x
	}
	return p
}

func nonNil(m Meta) Meta {
	if m == nil {
		return Meta{}
	}
	return m
}

// Reader decodes a stream of frames.
type Reader struct {
	r   io.Reader
	hdr [4]byte
}

// NewReader reads frames from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Next returns the next event. At a clean end of input it returns io.EOF;
// input that ends inside a frame gives ErrTornFrame.
func (r *Reader) Next() (Event, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		if err == io.EOF {
			return Event{}, io.EOF
		}
		if err == io.ErrUnexpectedEOF {
			return Event{}, ErrTornFrame
		}
		return Event{}, err
	}
	n := binary.BigEndian.Uint32(r.hdr[:])
	if n > MaxFrameSize {
		return Event{}, fmt.Errorf("events: %w (%d bytes)", ErrFrameTooLarge, n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r.r, body); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return Event{}, ErrTornFrame
		}
		return Event{}, err
	}
	return DecodeBody(body)
}

// DecodeBody decodes one frame body. Fields and kinds it does not know
// are ignored.
func DecodeBody(body []byte) (Event, error) {
	var env struct {
		TS      int64              `msgpack:"ts"`
		Kind    string             `msgpack:"kind"`
		Payload msgpack.RawMessage `msgpack:"payload"`
	}
	if err := msgpack.Unmarshal(body, &env); err != nil {
		return Event{}, fmt.Errorf("events: decode envelope: %w", err)
	}
	ev := Event{TS: env.TS, Kind: env.Kind}
	p := newPayload(env.Kind)
	if p == nil {
		return ev, nil
	}
	if err := msgpack.Unmarshal(env.Payload, p); err != nil {
		return Event{}, fmt.Errorf("events: decode %s: %w", env.Kind, err)
	}
	ev.Payload = reflect.ValueOf(p).Elem().Interface().(Payload)
	return ev, nil
}
