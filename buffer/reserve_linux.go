package buffer

import (
	"os"

	"golang.org/x/sys/unix"
)

// allocate makes the file's first n bytes real blocks on disk (not a hole
// a later write could fail to fill).
func allocate(f *os.File, n int64) error {
	return unix.Fallocate(int(f.Fd()), 0, 0, n)
}
