//go:build !linux

package buffer

import "os"

// allocate writes n zero bytes: without fallocate, only written blocks are
// sure to be allocated.
func allocate(f *os.File, n int64) error {
	buf := make([]byte, 64<<10)
	for off := int64(0); off < n; off += int64(len(buf)) {
		if _, err := f.WriteAt(buf[:min(int64(len(buf)), n-off)], off); err != nil {
			return err
		}
	}
	return nil
}
