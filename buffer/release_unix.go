//go:build linux || darwin || freebsd || netbsd || openbsd

package buffer

import "golang.org/x/sys/unix"

// releaseMapped drops the process's mapping of [addr, addr+size) of the
// file's shared read-only map. The data stays in the file and the page
// cache; the next access maps it again. Only ever called on bbolt's own
// mapping while a read transaction keeps it in place.
func releaseMapped(addr uintptr, size int64) error {
	_, _, errno := unix.Syscall(unix.SYS_MADVISE, addr, uintptr(size), unix.MADV_DONTNEED)
	if errno != 0 {
		return errno
	}
	return nil
}
