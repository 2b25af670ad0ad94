package peers

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// SocatPath is where Debian's socat package puts it.
const SocatPath = "/usr/bin/socat"

// PtyPair is a null-modem cable without hardware: socat joins two
// pseudo-terminals, and bytes written to one end are read at the other.
// The serial server opens A, the client under test B.
type PtyPair struct {
	A, B string // paths of the two ends (symlinks to /dev/pts/N)
	p    *process
}

// StartPtyPair starts socat with a pty pair in the test's temporary
// directory; the test's cleanup stops it.
func StartPtyPair(t testing.TB) *PtyPair {
	t.Helper()
	need(t, SocatPath, "socat")
	dir := t.TempDir()
	pp := &PtyPair{A: filepath.Join(dir, "ttyA"), B: filepath.Join(dir, "ttyB")}
	pp.p = newProcess(t, "socat", filepath.Join(dir, "socat.log"), SocatPath, "-d", "-d",
		"pty,raw,echo=0,link="+pp.A, "pty,raw,echo=0,link="+pp.B)
	if err := pp.p.start(); err != nil {
		t.Fatalf("socat: %v", err)
	}
	pp.p.waitReady(startTimeout, "both pty links", func() bool {
		_, errA := os.Stat(pp.A)
		_, errB := os.Stat(pp.B)
		return errA == nil && errB == nil
	})
	return pp
}

// Stop ends socat: both ends hang up (a USB adapter unplugged).
func (pp *PtyPair) Stop() { pp.p.stop() }

// SerialOptions says how a pymodbus server talks on its pty end.
type SerialOptions struct {
	Framer string // rtu (default) | ascii
	Baud   int    // default 19200
}

// StartPymodbusSerial starts modbus_server.py as an RTU (or ASCII) server
// on end A of a new socat pty pair; the client opens Pymodbus.Device (end
// B). Addr, URL and Port stay empty; Mute and Unmute work as on TCP.
func StartPymodbusSerial(t testing.TB, spec PymodbusSpec, opts SerialOptions) *Pymodbus {
	t.Helper()
	if opts.Framer == "" {
		opts.Framer = "rtu"
	}
	if opts.Baud == 0 {
		opts.Baud = 19200
	}
	pty := StartPtyPair(t)
	return startPymodbus(t, spec, &serialJSON{Port: pty.A, Framer: opts.Framer, Baudrate: opts.Baud}, pty)
}

// Mute makes the units stop answering (no reply at all), as a device that
// lost power on a live bus or behind a gateway; Unmute brings them back.
func (s *Pymodbus) Mute(units ...byte) {
	s.p.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range units {
		s.muted[u] = true
	}
	s.writeControl()
}

// Unmute undoes Mute.
func (s *Pymodbus) Unmute(units ...byte) {
	s.p.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range units {
		delete(s.muted, u)
	}
	s.writeControl()
}

func (s *Pymodbus) writeControl() {
	ids := make([]string, 0, len(s.muted))
	for u := range s.muted {
		ids = append(ids, strconv.Itoa(int(u)))
	}
	sort.Strings(ids)
	// Written whole and renamed: the server reads it at every request.
	tmp := s.spec.Control + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(ids, "\n")+"\n"), 0o644); err != nil {
		s.p.t.Fatalf("pymodbus: control file: %v", err)
	}
	if err := os.Rename(tmp, s.spec.Control); err != nil {
		s.p.t.Fatalf("pymodbus: control file: %v", err)
	}
}

// MbpollSerial runs mbpoll once as an independent Modbus RTU client on the
// serial device (a pty end nobody else has open) at 19200 8N1, like
// Mbpoll does over TCP: -m rtu, -b, -P none, -1, -o 1 are added.
func MbpollSerial(t testing.TB, device string, args ...string) (map[int]string, error) {
	t.Helper()
	argv := append([]string{"-m", "rtu", "-b", "19200", "-P", "none", "-1", "-o", "1"}, args...)
	argv = append(argv, device)
	return runMbpoll(t, argv)
}
