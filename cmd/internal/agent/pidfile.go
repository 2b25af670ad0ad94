package agent

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The running agent writes its pid beside the buffer file, so that
// `linegate reload -c FILE` finds the agent of that config: the buffer path
// is what makes an agent unique (bbolt locks it), and the folder is the
// agent's own (systemd StateDirectory), writable by nobody else.

// PIDFilePath is the pid file of the agent whose buffer is bufferPath.
func PIDFilePath(bufferPath string) string {
	return filepath.Join(filepath.Dir(bufferPath), "linegate.pid")
}

// writePIDFile writes this process's pid to path; remove deletes it again
// if it still holds this pid.
func writePIDFile(path string) (remove func(), err error) {
	pid := os.Getpid()
	if err := os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return func() {}, fmt.Errorf("pid file: %w", err)
	}
	return func() {
		if got, err := ReadPIDFile(path); err == nil && got == pid {
			os.Remove(path)
		}
	}, nil
}

// ReadPIDFile reads a pid file.
func ReadPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("%s does not exist: is linegate running with this config?", path)
	}
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("pid file %s holds no pid", path)
	}
	return pid, nil
}
