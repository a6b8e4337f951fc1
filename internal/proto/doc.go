// Package proto is the host↔agent wire protocol shared by the guest agent and
// the host-side client.
//
// A yamux session runs over the VM's virtio-serial port. Every yamux stream
// carries frames: a 4-byte big-endian length followed by a msgpack body.
//
// The host opens the first stream of a session with a Request for OpHello
// and the agent answers with a Hello. That stream then stays open as the
// call stream: the host sends Requests with distinct IDs, the agent runs
// them concurrently and answers each with a Response carrying its ID, in
// completion order; OpCancel abandons a call. One small op therefore costs
// one frame each way, not a stream setup and teardown.
//
// Operations that move bulk data or live long get a yamux stream of their
// own: one Request (ID 0), one Response, then the frames that operation
// defines — Chunks for read_file/write_file and for the live streams
// (proc_stream, tail_file, fd_stream, file_tail: a Chunk per agent read,
// an EOF chunk where the source ends, the host closing the stream to stop
// it), or a whole nested session for worker_spawn (the worker speaks this
// same protocol, relayed byte for byte by the agent). Any single op may
// also be sent that way.
package proto

// ProtocolVersion pins the wire format. Bump it on any new op, field, enum
// value or mode bit (30-runtime.md C8); the handshake refuses a mismatch.
const ProtocolVersion = 3
