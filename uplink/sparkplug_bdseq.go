package uplink

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// bdSeq persistence (Config.BdSeqFile).
//
// The file holds the bdSeq of the last CONNECT, as decimal text. It is
// written (temporary file, fsync, rename) before each CONNECT, so a process
// that dies at any point never reuses a bdSeq: the next one starts above.
// A small file of its own, not a bucket in the buffer's bbolt file: the
// buffer owns that file and its transactions (bbolt allows one writer
// process, and the uplink only reads the buffer through Source), and one
// fsync per connect is no load.

// loadBdSeq returns the bdSeq of the next CONNECT: one above the stored one
// (mod 256), 0 when there is none.
func loadBdSeq(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sparkplug: read bdSeq: %w", err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 8)
	if err != nil {
		return 0, fmt.Errorf("sparkplug: bdSeq file %s: %q is not 0..255", path, strings.TrimSpace(string(b)))
	}
	return (v + 1) % 256, nil
}

// saveBdSeq stores v as the bdSeq of the CONNECT about to go out.
func saveBdSeq(path string, v uint64) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("sparkplug: save bdSeq: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a rename: nothing there any more
	_, err = tmp.WriteString(strconv.FormatUint(v, 10) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("sparkplug: save bdSeq: %w", err)
	}
	return nil
}
