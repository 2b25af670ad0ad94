package drivers

import "context"

// Writer is a driver that can write one tag: commands from the MES.
type Writer interface {
	// Write writes value (bool, int64, uint64, float64 or string, in the
	// tag's raw units: the caller has reversed the normalization) to the
	// tag at index (configuration order), then reads the tag back and
	// returns what the device holds now, in the form Read gives it.
	//
	// A *RefusedError means nothing was sent: the tag cannot be written
	// or the value does not fit it. Any other error comes from the
	// device or the link (the value may or may not have been written).
	Write(ctx context.Context, index int, value any) (readback any, err error)
}

// RefusedError is a write the driver did not send.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return e.Reason }

// Refused returns a *RefusedError.
func Refused(reason string) error { return &RefusedError{Reason: reason} }
