package configs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckBufferPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := CheckBufferPath(filepath.Join(dir, "new", "deeper", "buffer.db")); err != nil {
		t.Errorf("a folder run would create: %v", err)
	}
	err := CheckBufferPath(filepath.Join(file, "buffer.db"))
	if err == nil || !strings.Contains(err.Error(), "buffer.path "+filepath.Join(file, "buffer.db")+": "+file+" is a file, not a folder") {
		t.Errorf("a file in place of the folder: %v", err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 1 {
		t.Errorf("the check left files behind: %v", left)
	}
}

// A folder the user cannot write: mode 0555 for a user, a read-only tmpfs
// for root (who writes through 0555).
func TestCheckBufferPathUnwritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	reason := "permission denied"
	if os.Geteuid() == 0 {
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
			t.Skipf("as root only a read-only mount makes a folder unwritable, and mount failed: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", dir).Run() })
		reason = "read-only file system"
	}
	err := CheckBufferPath(filepath.Join(dir, "sub", "buffer.db"))
	if err == nil || !strings.Contains(err.Error(), "buffer.path "+filepath.Join(dir, "sub", "buffer.db")+": user ") || !strings.Contains(err.Error(), reason) {
		t.Errorf("unwritable folder: %v", err)
	}
}
