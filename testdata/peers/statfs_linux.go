package peers

import "syscall"

type statfsFree struct{}

// free is the bytes available on the file system holding path.
func (statfsFree) free(path string) (int64, error) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(path, &s); err != nil {
		return 0, err
	}
	return int64(s.Bavail) * int64(s.Bsize), nil
}
