//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package buffer

// releaseMapped is a no-op where madvise is not available (Windows: the
// working set manager trims mapped file pages by itself).
func releaseMapped(uintptr, int64) error { return nil }
