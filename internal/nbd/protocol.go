package nbd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Wire constants of the NBD protocol (fixed newstyle negotiation, simple
// replies), as documented in the protocol's proto.md.
const (
	magicInit     = 0x4e42444d41474943 // "NBDMAGIC"
	magicOpt      = 0x49484156454f5054 // "IHAVEOPT"
	magicOptReply = 0x0003e889045565a9
	magicRequest  = 0x25609513
	magicReply    = 0x67446698

	// Handshake flags (server) and client flags.
	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1
	clientFlagsKnown  = flagFixedNewstyle | flagNoZeroes

	// Options.
	optExportName      = 1
	optAbort           = 2
	optList            = 3
	optStartTLS        = 5
	optInfo            = 6
	optGo              = 7
	optStructuredReply = 8

	// Option replies.
	repAck        = 1
	repServer     = 2
	repInfo       = 3
	repErrUnsup   = 1<<31 | 1
	repErrPolicy  = 1<<31 | 2
	repErrInvalid = 1<<31 | 3
	repErrUnknown = 1<<31 | 6

	// NBD_INFO types.
	infoExport    = 0
	infoBlockSize = 3

	// Transmission flags.
	tflagHasFlags  = 1 << 0
	tflagReadOnly  = 1 << 1
	tflagSendFlush = 1 << 2
	tflagSendFUA   = 1 << 3
	tflagSendTrim  = 1 << 5

	// Commands and command flags.
	cmdRead    = 0
	cmdWrite   = 1
	cmdDisc    = 2
	cmdFlush   = 3
	cmdTrim    = 4
	cmdFlagFUA = 1 << 0

	// Error values of simple replies (Linux errno numbers).
	errPerm     = 1
	errIO       = 5
	errInval    = 22
	errNoSpc    = 28
	errNotSup   = 95
	errShutdown = 108
)

// Limits that keep a hostile or broken client from making the server
// allocate much: option data (an export name is at most 4096 bytes) and a
// request's payload (QEMU sends at most 32 MiB).
const (
	maxOptionLen  = 64 << 10
	maxRequestLen = 32 << 20
	// preferredBlock is the block size advertised to clients.
	preferredBlock = 4096
)

// errAbort ends a negotiation the client aborted: not an error to report.
var errAbort = errors.New("nbd: client aborted the negotiation")

// request is one transmission-phase request header.
type request struct {
	flags  uint16
	typ    uint16
	cookie uint64
	offset uint64
	length uint32
}

const requestLen = 28

// parseRequest decodes a request header; it checks the magic only (the
// command's own checks need the export).
func parseRequest(b []byte) (request, error) {
	if len(b) < requestLen {
		return request{}, fmt.Errorf("nbd: short request header (%d bytes)", len(b))
	}
	if m := binary.BigEndian.Uint32(b[0:]); m != magicRequest {
		return request{}, fmt.Errorf("nbd: bad request magic %#x", m)
	}
	return request{
		flags:  binary.BigEndian.Uint16(b[4:]),
		typ:    binary.BigEndian.Uint16(b[6:]),
		cookie: binary.BigEndian.Uint64(b[8:]),
		offset: binary.BigEndian.Uint64(b[16:]),
		length: binary.BigEndian.Uint32(b[24:]),
	}, nil
}

func (r request) String() string {
	name := map[uint16]string{cmdRead: "READ", cmdWrite: "WRITE", cmdDisc: "DISC", cmdFlush: "FLUSH", cmdTrim: "TRIM"}[r.typ]
	if name == "" {
		name = fmt.Sprintf("cmd%d", r.typ)
	}
	return fmt.Sprintf("%s offset=%d length=%d flags=%#x", name, r.offset, r.length, r.flags)
}

// writeSimpleReply writes a reply header (the payload of a successful read
// follows it).
func writeSimpleReply(w io.Writer, cookie uint64, errno uint32) error {
	var b [16]byte
	binary.BigEndian.PutUint32(b[0:], magicReply)
	binary.BigEndian.PutUint32(b[4:], errno)
	binary.BigEndian.PutUint64(b[8:], cookie)
	_, err := w.Write(b[:])
	return err
}

// writeOptReply writes one option reply.
func writeOptReply(w io.Writer, opt, typ uint32, data []byte) error {
	var b [20]byte
	binary.BigEndian.PutUint64(b[0:], magicOptReply)
	binary.BigEndian.PutUint32(b[8:], opt)
	binary.BigEndian.PutUint32(b[12:], typ)
	binary.BigEndian.PutUint32(b[16:], uint32(len(data)))
	if _, err := w.Write(b[:]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}
