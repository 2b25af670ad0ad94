package buffer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The seq sidecar (<path>.seq) keeps the MES's de-duplication working when
// the buffer file itself is lost: the MES drops a message whose
// "<gateway>:<seq>" it has seen, so reusing seqs after a corrupt or deleted
// buffer file would silently discard new data as duplicates.
//
// The sidecar holds a number C with the invariant "every seq ever committed
// is <= C". Writing it in every commit would add an fsync'd file replacement
// (three fsyncs) to each commit; instead it reserves seqs in blocks:
// before a commit that would pass C, C is raised to that commit's last seq
// plus seqReserveBlock, and written (fsync'd) first. A clean Close writes
// the exact last seq, so that after a clean stop the next fresh start has
// no gap.
//
// On Open:
//   - the file is healthy: seq continues from the file's meta (exact). When
//     the sidecar comes from a clean Close and is higher (an old copy of the
//     buffer file was put back), it wins.
//   - the file is fresh (missing, empty, or corrupt and moved aside): seq
//     continues after C. After a crash this leaves a gap of at most
//     seqReserveBlock seqs, which the MES sees as a gap (explained by the
//     buffer_corrupt event); a gap is detectable, a reuse is not.
const seqReserveBlock = 1 << 14

type seqSidecar struct {
	value uint64
	clean bool // written by Close: value is the exact last seq, not a reservation
}

func sidecarPath(path string) string { return path + ".seq" }

const sidecarMagic = "linegate-buffer-seq v1"

func readSidecar(path string) (seqSidecar, bool, error) {
	b, err := os.ReadFile(sidecarPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return seqSidecar{}, false, nil
	}
	if err != nil {
		return seqSidecar{}, false, err
	}
	f := strings.Fields(string(b))
	if len(f) != 4 || f[0]+" "+f[1] != sidecarMagic || (f[3] != "clean" && f[3] != "reserved") {
		return seqSidecar{}, false, fmt.Errorf("%s: unrecognised content %q", sidecarPath(path), truncate(string(b), 64))
	}
	v, err := strconv.ParseUint(f[2], 10, 64)
	if err != nil {
		return seqSidecar{}, false, fmt.Errorf("%s: %w", sidecarPath(path), err)
	}
	return seqSidecar{value: v, clean: f[3] == "clean"}, true, nil
}

// writeSidecar replaces the sidecar atomically: write a temporary file,
// fsync it, rename it over the old one, fsync the directory. A crash at any
// point leaves either the old or the new content, never a torn number.
func writeSidecar(path string, s seqSidecar) error {
	state := "reserved"
	if s.clean {
		state = "clean"
	}
	content := fmt.Sprintf("%s %d %s\n", sidecarMagic, s.value, state)
	final := sidecarPath(path)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return syncDir(filepath.Dir(final))
}

// syncDir makes a rename in dir durable. Some platforms (Windows) cannot
// open a directory for fsync; there the rename is as durable as the OS makes
// it and the error is ignored.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
