package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The side-by-side run reads everything it reports about a process from
// /proc: the parsers are pure (tested on captured text), the readers below
// them only open the files.

// parseStatCPU returns utime+stime in clock ticks from a /proc/<pid>/stat line.
func parseStatCPU(b []byte) (uint64, error) {
	// The command name (field 2) may hold spaces and parentheses: fields
	// count from after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat: no ')'")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat: %d fields after the name", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64) // field 14
	st, err2 := strconv.ParseUint(f[12], 10, 64) // field 15
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc stat utime/stime: %w", err)
	}
	return ut + st, nil
}

// procStatus is what the bench reads from a /proc/<pid>/status (or a
// task's status): memory in bytes, context switches as counted.
type procStatus struct {
	HWM, RSS            int64 // VmHWM, VmRSS; 0 in a task's file without them
	Voluntary, Involunt uint64
}

// parseStatus reads VmHWM, VmRSS and the two context switch counters.
// Both counters must be present: without them a wake-up count would be
// silently zero.
func parseStatus(b []byte) (procStatus, error) {
	var s procStatus
	var haveV, haveN bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		var err error
		switch k {
		case "VmHWM", "VmRSS":
			var kb int64
			kb, err = strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
			if k == "VmHWM" {
				s.HWM = kb << 10
			} else {
				s.RSS = kb << 10
			}
		case "voluntary_ctxt_switches":
			s.Voluntary, err = strconv.ParseUint(v, 10, 64)
			haveV = true
		case "nonvoluntary_ctxt_switches":
			s.Involunt, err = strconv.ParseUint(v, 10, 64)
			haveN = true
		}
		if err != nil {
			return s, fmt.Errorf("/proc status %s: %w", k, err)
		}
	}
	if !haveV || !haveN {
		return s, errors.New("/proc status: no ctxt_switches lines")
	}
	return s, sc.Err()
}

// parseIOWriteBytes returns write_bytes of a /proc/<pid>/io: the bytes the
// process caused to be sent to the storage layer (counted when it dirties
// the page cache), not the bytes of write calls (wchar).
func parseIOWriteBytes(b []byte) (uint64, error) {
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "write_bytes:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc io write_bytes: %w", err)
			}
			return n, nil
		}
	}
	return 0, errors.New("/proc io: no write_bytes (task I/O accounting off?)")
}

// parseStraceCounts sums the calls column of `strace -c` for the named
// syscalls. strace prints no table at all when it saw none of them, so an
// output without a table is zero calls, not an error; a table row that
// does not parse is.
func parseStraceCounts(out string, syscalls ...string) (int64, error) {
	want := map[string]bool{}
	for _, s := range syscalls {
		want[s] = true
	}
	var n int64
	for l := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(l)
		// % time, seconds, usecs/call, calls, [errors,] syscall
		if len(f) < 5 || !want[f[len(f)-1]] {
			continue
		}
		c, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("strace -c row %q: %w", l, err)
		}
		n += c
	}
	return n, nil
}

// parseSchedstat returns the time on CPU in ns, the first field of a
// /proc/<pid>/task/<tid>/schedstat: the scheduler's exact figure, finer
// than the 10 ms ticks of stat at an idle agent's fraction of a percent.
func parseSchedstat(b []byte) (uint64, error) {
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, errors.New("empty schedstat")
	}
	n, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("schedstat: %w", err)
	}
	return n, nil
}

// procSample is one reading of a process's counters.
type procSample struct {
	cpuTicks   uint64
	ctxt       uint64 // voluntary + nonvoluntary, summed over its threads
	schedNs    uint64 // time on CPU, summed over its threads (0: no schedstat)
	threads    int
	writeBytes uint64
	ioOK       bool // /proc/<pid>/io readable and has write_bytes
	hwm, rss   int64
}

// sampleProc reads pid's stat, status, every task's status and io.
func sampleProc(pid int) (procSample, error) {
	var s procSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	if s.cpuTicks, err = parseStatCPU(b); err != nil {
		return s, err
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	st, err := parseStatus(b)
	if err != nil {
		return s, err
	}
	s.hwm, s.rss = st.HWM, st.RSS
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil {
		return s, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread exited between the glob and the read
		}
		ts, err := parseStatus(b)
		if err != nil {
			return s, fmt.Errorf("%s: %w", t, err)
		}
		s.ctxt += ts.Voluntary + ts.Involunt
		s.threads++
		if b, err := os.ReadFile(filepath.Join(filepath.Dir(t), "schedstat")); err == nil {
			if ns, err := parseSchedstat(b); err == nil {
				s.schedNs += ns
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid)); err == nil {
		if s.writeBytes, err = parseIOWriteBytes(b); err == nil {
			s.ioOK = true
		}
	}
	return s, nil
}
