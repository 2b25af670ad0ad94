// Package commands takes the writes the MES sends to the line (set points,
// recipe values, acknowledgements) and decides, for each, whether it may
// run: commands on, tag writable, value of the tag's type and inside its
// write_range, not expired by the gateway's clock, within the device's
// rate, its id never seen before (a ledger in bbolt beside the buffer,
// which outlives reconnects and restarts). An accepted command goes to the
// device's queue (the collector runs it between polls); its result is ok
// only when the value read back equals the value written.
//
// Every command, accepted or not, is answered on the gateway's cmd_result
// topic and recorded as a command event in the buffer (commands/README.md).
package commands

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Schema is the payload schema of a command and its result.
const Schema = "linegate/v1"

// MaxIDLength bounds a command id: it is a key of the ledger.
const MaxIDLength = 128

// Request is one parsed command.
type Request struct {
	ID  string
	Tag string
	// Value is json.Number, bool or string.
	Value   any
	Expires time.Time
}

type wire struct {
	Schema  *string          `json:"schema"`
	ID      *string          `json:"id"`
	Tag     *string          `json:"tag"`
	Value   *json.RawMessage `json:"value"`
	Expires *string          `json:"expires"`
}

// ParseCommand reads a command payload:
//
//	{"schema":"linegate/v1","id":"mes-123","tag":"setpoint","value":52.5,"expires":"2026-11-27T10:15:12Z"}
//
// Every field is required; unknown fields, a value that is not a number,
// bool or string, and trailing data are errors. The id is returned with
// an error when it could be read, so the rejection can name it.
func ParseCommand(payload []byte) (Request, error) {
	var w wire
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Request{}, fmt.Errorf("malformed command: %v", err)
	}
	if dec.More() {
		return Request{}, errors.New("malformed command: data after the JSON object")
	}
	var r Request
	if w.ID != nil && validID(*w.ID) {
		r.ID = *w.ID
	}
	switch {
	case w.Schema == nil || *w.Schema != Schema:
		return r, fmt.Errorf("malformed command: schema must be %q", Schema)
	case w.ID == nil || *w.ID == "":
		return r, errors.New("malformed command: id is required")
	case !validID(*w.ID):
		return r, fmt.Errorf("malformed command: id must be 1..%d printable characters", MaxIDLength)
	case w.Tag == nil || *w.Tag == "":
		return r, errors.New("malformed command: tag is required")
	case w.Value == nil:
		return r, errors.New("malformed command: value is required")
	case w.Expires == nil:
		return r, errors.New("malformed command: expires is required (RFC 3339; a command still queued after it is not executed)")
	}
	r.Tag = *w.Tag
	exp, err := time.Parse(time.RFC3339Nano, *w.Expires)
	if err != nil {
		return r, fmt.Errorf("malformed command: expires %q is not an RFC 3339 time", *w.Expires)
	}
	r.Expires = exp.UTC()
	vdec := json.NewDecoder(bytes.NewReader(*w.Value))
	vdec.UseNumber()
	var v any
	if err := vdec.Decode(&v); err != nil {
		return r, fmt.Errorf("malformed command: value: %v", err)
	}
	switch v.(type) {
	case json.Number, bool, string:
		r.Value = v
	default:
		return r, errors.New("malformed command: value must be a number, true/false or a string")
	}
	return r, nil
}

func validID(id string) bool {
	if id == "" || len(id) > MaxIDLength {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool { return !unicode.IsPrint(r) || r == unicode.ReplacementChar }) < 0
}
