package modbus

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	goburrow "github.com/goburrow/modbus"
)

// Exception is a Modbus exception reply: the device answered, but refused
// the request. It concerns only the tags of that request.
type Exception struct {
	Function byte // function code of the request
	Code     byte
}

func (e *Exception) Error() string {
	return fmt.Sprintf("modbus exception %d (%s)", e.Code, exceptionName(e.Code))
}

func exceptionName(code byte) string {
	switch code {
	case 1:
		return "illegal function"
	case 2:
		return "illegal data address"
	case 3:
		return "illegal data value"
	case 4:
		return "server device failure"
	case 5:
		return "acknowledge"
	case 6:
		return "server device busy"
	case 8:
		return "memory parity error"
	case 10:
		return "gateway path unavailable"
	case 11:
		return "gateway target device failed to respond"
	}
	return "unknown"
}

// RequestError is the failure of one read request; it names the table and
// the range, e.g. "read holding 0x0000+14: i/o timeout".
type RequestError struct {
	Register string
	Address  uint16
	Count    uint16
	Err      error
}

func (e *RequestError) Error() string {
	return fmt.Sprintf("read %s 0x%04X+%d: %v", e.Register, e.Address, e.Count, e.Err)
}

func (e *RequestError) Unwrap() error { return e.Err }

var (
	errShortReply   = errors.New("reply shorter than requested")
	errClosedByPeer = errors.New("connection closed by device")
)

// classify turns what goburrow and the socket return into short errors,
// and tells whether the device answered with an exception (the connection
// is then still in step and stays open).
func classify(err error) (_ error, exception bool) {
	var me *goburrow.ModbusError
	if errors.As(err, &me) && me.FunctionCode&0x80 != 0 {
		return &Exception{Function: me.FunctionCode &^ 0x80, Code: me.ExceptionCode}, true
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return os.ErrDeadlineExceeded, false // "i/o timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errClosedByPeer, false
	}
	// A read or write error already names the device in the driver's
	// context; keep "read: connection reset by peer", drop the addresses.
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op != "dial" && oe.Err != nil {
		return oe.Err, false
	}
	return err, false
}
