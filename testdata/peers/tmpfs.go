package peers

import (
	"os"
	"os/exec"
	"runtime"
	"testing"
)

// MountTmpfs mounts a tmpfs of the given size (mount's syntax: "4m") on a
// fresh directory, for a test that needs a small file system it can fill,
// and unmounts it at cleanup. Mounting needs Linux and root (or
// CAP_SYS_ADMIN): without them the test is skipped with the reason, and
// fails under LINEGATE_INTEROP=1, where a missing peer is a failure.
func MountTmpfs(t testing.TB, size string) string {
	t.Helper()
	fail := t.Skipf
	if os.Getenv(InteropEnv) == "1" {
		fail = t.Fatalf
	}
	if runtime.GOOS != "linux" {
		fail("a size-capped tmpfs needs Linux (GOOS %s)", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		fail("mounting a size-capped tmpfs needs root (euid %d)", os.Geteuid())
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		fail("mount -t tmpfs -o size=%s: %v: %s (not permitted here?)", size, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// FillDisk writes the file path until the file system is full (ENOSPC) but
// for about leave bytes, and returns how many bytes it wrote. Remove the
// file to give the room back.
func FillDisk(t testing.TB, path string, leave int64) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st statfsFree
	free, err := st.free(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	var n int64
	for n+int64(len(chunk)) <= free-leave || leave == 0 {
		w, err := f.Write(chunk)
		n += int64(w)
		if err != nil {
			break // full
		}
	}
	if err := f.Sync(); err != nil && leave > 0 {
		t.Fatal(err)
	}
	return n
}
