package peers

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MbpollPath is where Debian's mbpoll package puts it.
const MbpollPath = "/usr/bin/mbpoll"

// mbpollValue matches one value line of mbpoll's output: "[12]: \t0x0007",
// "[3]: \t65535 (-1)" (a 16-bit register shown both ways), "[5]: \t-nan".
var mbpollValue = regexp.MustCompile(`^\[(\d+)\]:\s+(.*?)\s*$`)

// Mbpoll runs mbpoll once as an independent Modbus TCP client of addr
// (host:port) with the given options (-a UNIT -r REF -c N -t TYPE [-B] ...;
// -m tcp, -1, -o 1 and -p are added) and returns the values it printed by
// reference, as printed: "[12]: 0x0007" gives values[12] == "0x0007" and
// "[3]: 65535 (-1)" gives values[3] == "65535 (-1)". Use -t 4:hex for raw
// words; floats come as C's %g (6 significant digits).
// mbpoll's references are 1-based (protocol address + 1) unless -0 is
// given. An error (exception, timeout) comes back with mbpoll's message;
// a missing mbpoll fails the test.
func Mbpoll(t testing.TB, addr string, args ...string) (map[int]string, error) {
	t.Helper()
	need(t, MbpollPath, "mbpoll")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("mbpoll: address %q: %v", addr, err)
	}
	argv := append([]string{"-m", "tcp", "-1", "-o", "1", "-p", port}, args...)
	argv = append(argv, host)
	return runMbpoll(t, argv)
}

// runMbpoll runs mbpoll with argv and parses its values.
func runMbpoll(t testing.TB, argv []string) (map[int]string, error) {
	t.Helper()
	need(t, MbpollPath, "mbpoll")
	out, stderr, err := execOutput(MbpollPath, argv...)
	if err != nil {
		// mbpoll prints the reason on stderr: "Read output (holding)
		// register failed: Illegal data address".
		return nil, fmt.Errorf("mbpoll %s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr))
	}
	values := map[int]string{}
	for line := range strings.SplitSeq(out, "\n") {
		if m := mbpollValue.FindStringSubmatch(line); m != nil {
			ref, _ := strconv.Atoi(m[1])
			values[ref] = m[2]
		}
	}
	return values, nil
}

// execOutput runs a short-lived program, bounded so a hung one cannot stall
// the test, and returns its stdout and stderr.
func execOutput(path string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.SysProcAttr = sysProcAttr()
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}
