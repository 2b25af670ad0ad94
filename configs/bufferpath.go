package configs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
)

// CheckBufferPath says whether the gateway, running as this user, can
// create and write the buffer file at path: "run" would otherwise start and
// fail at once, after "check" said valid. It looks at the folder, or the
// nearest folder above it that exists ("run" creates the rest), by creating
// and removing a temporary file there: only that tells a read-only mount, an
// ACL or root's exceptions apart. The error names buffer.path and the user.
func CheckBufferPath(path string) error {
	dir := filepath.Dir(filepath.Clean(path))
	for {
		fi, err := os.Stat(dir)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Errorf("buffer.path %s: %s is a file, not a folder", path, dir)
		case err == nil:
			f, err := os.CreateTemp(dir, ".linegate-check-*")
			if err != nil {
				var pe *fs.PathError
				if errors.As(err, &pe) {
					err = pe.Err // the path is in the message already
				}
				return fmt.Errorf("buffer.path %s: %s cannot create files in %s (%v): give it the folder or choose another buffer.path", path, whoAmI(), dir, err)
			}
			name := f.Name()
			f.Close()
			os.Remove(name)
			return nil
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("buffer.path %s: %s cannot look into %s (%v)", path, whoAmI(), dir, errors.Unwrap(err))
		}
		up := filepath.Dir(dir)
		if up == dir {
			return nil
		}
		dir = up
	}
}

// whoAmI names the user this process runs as, for messages about access.
func whoAmI() string {
	u, err := user.Current()
	if err != nil {
		return fmt.Sprintf("user with uid %d", os.Getuid())
	}
	return fmt.Sprintf("user %s (uid %s)", u.Username, u.Uid)
}
