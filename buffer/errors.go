package buffer

import (
	"errors"
	"fmt"
)

// ErrClosed is returned by every method of a Queue after Close.
var ErrClosed = errors.New("buffer: queue is closed")

// ErrReadOnly is returned by the writing methods of a Queue opened with
// Options.ReadOnly.
var ErrReadOnly = errors.New("buffer: opened read-only")

// ErrInUse is matched (errors.Is) by the error Open returns when another
// process holds the buffer file's lock.
var ErrInUse = errors.New("buffer is in use by another process")

// inUseError carries the exact text an operator sees; it names the file and
// the next thing to check, since the usual cause is a second linegate.
type inUseError struct{ path string }

func (e *inUseError) Error() string {
	return "buffer " + e.path + " is in use by another process (is linegate running? see linegate status)"
}

func (e *inUseError) Is(target error) bool { return target == ErrInUse }

// CorruptError says that the buffer file, or a record in it, cannot be
// trusted. Open repairs a corrupt file by itself (it moves the file aside and
// starts a fresh one, see Open); the type is exported so that Verify's
// callers and logs can tell corruption from I/O errors.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("buffer %s is corrupt: %v", e.Path, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }
