package nbd

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// negotiate runs the server side of the fixed-newstyle handshake. It
// returns nil once the client chose an export (NBD_OPT_GO or
// NBD_OPT_EXPORT_NAME) and transmission starts, errAbort when the client
// ended the negotiation, or the protocol error that ended it.
func (e *Export) negotiate(r *bufio.Reader, w *bufio.Writer) error {
	var hello [18]byte
	binary.BigEndian.PutUint64(hello[0:], magicInit)
	binary.BigEndian.PutUint64(hello[8:], magicOpt)
	binary.BigEndian.PutUint16(hello[16:], flagFixedNewstyle|flagNoZeroes)
	if _, err := w.Write(hello[:]); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	var cf [4]byte
	if _, err := io.ReadFull(r, cf[:]); err != nil {
		return fmt.Errorf("nbd: reading client flags: %w", err)
	}
	clientFlags := binary.BigEndian.Uint32(cf[:])
	if clientFlags&^clientFlagsKnown != 0 {
		return fmt.Errorf("nbd: unknown client flags %#x", clientFlags)
	}
	noZeroes := clientFlags&flagNoZeroes != 0
	for {
		done, err := e.option(r, w, noZeroes)
		if err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// option handles one option; done says transmission starts.
func (e *Export) option(r *bufio.Reader, w *bufio.Writer, noZeroes bool) (done bool, err error) {
	var h [16]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return false, fmt.Errorf("nbd: reading option: %w", err)
	}
	if m := binary.BigEndian.Uint64(h[0:]); m != magicOpt {
		return false, fmt.Errorf("nbd: bad option magic %#x", m)
	}
	opt := binary.BigEndian.Uint32(h[8:])
	n := binary.BigEndian.Uint32(h[12:])
	if n > maxOptionLen {
		return false, fmt.Errorf("nbd: option %d carries %d bytes (max %d)", opt, n, maxOptionLen)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return false, fmt.Errorf("nbd: reading option %d data: %w", opt, err)
	}
	switch opt {
	case optExportName:
		if !e.knowsName(string(data)) {
			return false, fmt.Errorf("nbd: client asked for unknown export %q", data)
		}
		var b [10 + 124]byte
		binary.BigEndian.PutUint64(b[0:], uint64(e.size))
		binary.BigEndian.PutUint16(b[8:], e.transmissionFlags())
		out := b[:]
		if noZeroes {
			out = b[:10]
		}
		_, err := w.Write(out)
		return err == nil, err
	case optAbort:
		_ = writeOptReply(w, opt, repAck, nil)
		_ = w.Flush()
		return false, errAbort
	case optList:
		if n != 0 {
			return false, writeOptReply(w, opt, repErrInvalid, nil)
		}
		name := []byte(e.name)
		d := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
		if err := writeOptReply(w, opt, repServer, append(d, name...)); err != nil {
			return false, err
		}
		return false, writeOptReply(w, opt, repAck, nil)
	case optInfo, optGo:
		return e.infoOrGo(w, opt, data)
	case optStartTLS:
		return false, writeOptReply(w, opt, repErrPolicy, nil)
	case optStructuredReply:
		// Simple replies only (the spec does not require structured ones).
		return false, writeOptReply(w, opt, repErrUnsup, nil)
	default:
		return false, writeOptReply(w, opt, repErrUnsup, nil)
	}
}

// infoOrGo answers NBD_OPT_INFO and NBD_OPT_GO: the export's size and
// flags, and its block sizes; GO then starts transmission.
func (e *Export) infoOrGo(w *bufio.Writer, opt uint32, data []byte) (bool, error) {
	if len(data) < 4 {
		return false, writeOptReply(w, opt, repErrInvalid, nil)
	}
	nameLen := binary.BigEndian.Uint32(data)
	if uint64(len(data)) < 4+uint64(nameLen)+2 {
		return false, writeOptReply(w, opt, repErrInvalid, nil)
	}
	name := string(data[4 : 4+nameLen])
	rest := data[4+nameLen:]
	nreq := binary.BigEndian.Uint16(rest)
	if len(rest) != 2+2*int(nreq) {
		return false, writeOptReply(w, opt, repErrInvalid, nil)
	}
	if !e.knowsName(name) {
		return false, writeOptReply(w, opt, repErrUnknown, []byte(fmt.Sprintf("no export %q", name)))
	}
	var exp [12]byte
	binary.BigEndian.PutUint16(exp[0:], infoExport)
	binary.BigEndian.PutUint64(exp[2:], uint64(e.size))
	binary.BigEndian.PutUint16(exp[10:], e.transmissionFlags())
	if err := writeOptReply(w, opt, repInfo, exp[:]); err != nil {
		return false, err
	}
	// Block sizes: any byte alignment works (partial sectors are merged
	// with the current view), 4 KiB preferred, requests up to 32 MiB.
	var bs [14]byte
	binary.BigEndian.PutUint16(bs[0:], infoBlockSize)
	binary.BigEndian.PutUint32(bs[2:], 1)
	binary.BigEndian.PutUint32(bs[6:], preferredBlock)
	binary.BigEndian.PutUint32(bs[10:], maxRequestLen)
	if err := writeOptReply(w, opt, repInfo, bs[:]); err != nil {
		return false, err
	}
	if err := writeOptReply(w, opt, repAck, nil); err != nil {
		return false, err
	}
	return opt == optGo, nil
}

// knowsName accepts the export's name and the default export "".
func (e *Export) knowsName(n string) bool { return n == "" || n == e.name }

func (e *Export) transmissionFlags() uint16 {
	f := uint16(tflagHasFlags | tflagSendFlush | tflagSendFUA | tflagSendTrim)
	if e.readOnly {
		f |= tflagReadOnly
	}
	return f
}
