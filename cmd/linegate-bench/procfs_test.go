package main

import (
	"strings"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	cases := []struct {
		name, in string
		want     uint64
		err      bool
	}{
		{name: "plain", in: "8011 (cat) R 7990 7990 29534 0 -1 4194304 103 0 0 0 12 30 0 0 20 0 1 0 194011 3133440 416", want: 42},
		{name: "name with spaces and parens", in: "77 (my (odd) prog) S 1 77 77 0 -1 4194560 900 0 0 0 1500 250 0 0 20 0 9 0 100 1000 200", want: 1750},
		{name: "no name", in: "77 S 1 77 77", err: true},
		{name: "short", in: "77 (x) S 1 2 3", err: true},
		{name: "not a number", in: "8011 (cat) R 7990 7990 29534 0 -1 4194304 103 0 0 0 x 30 0", err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if got != tc.want {
				t.Fatalf("got %d ticks, want %d", got, tc.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	const full = "Name:\tlinegate\nVmPeak:\t 1264060 kB\nVmHWM:\t   19456 kB\nVmRSS:\t   18432 kB\nThreads:\t7\n" +
		"voluntary_ctxt_switches:\t1234\nnonvoluntary_ctxt_switches:\t56\n"
	cases := []struct {
		name, in string
		want     procStatus
		err      bool
	}{
		{name: "process", in: full, want: procStatus{HWM: 19456 << 10, RSS: 18432 << 10, Voluntary: 1234, Involunt: 56}},
		// A task's status of a kernel without Vm lines still counts.
		{name: "task without memory", in: "Name:\tx\nvoluntary_ctxt_switches:\t3\nnonvoluntary_ctxt_switches:\t0\n", want: procStatus{Voluntary: 3}},
		{name: "no switch counters", in: "Name:\tx\nVmHWM:\t 1 kB\n", err: true},
		{name: "bad number", in: "VmHWM:\t x kB\nvoluntary_ctxt_switches:\t3\nnonvoluntary_ctxt_switches:\t0\n", err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatus([]byte(tc.in))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseIOWriteBytes(t *testing.T) {
	cases := []struct {
		name, in string
		want     uint64
		err      bool
	}{
		{name: "io", in: "rchar: 6976\nwchar: 100\nsyscr: 10\nsyscw: 1\nread_bytes: 0\nwrite_bytes: 61440\ncancelled_write_bytes: 4096\n", want: 61440},
		{name: "no accounting", in: "rchar: 6976\nwchar: 100\n", err: true},
		{name: "garbage", in: "write_bytes: lots\n", err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseIOWriteBytes([]byte(tc.in))
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("got %d, %v; want %d, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestParseSchedstat(t *testing.T) {
	cases := []struct {
		in   string
		want uint64
		err  bool
	}{
		{in: "1725715 77362 12\n", want: 1725715},
		{in: "", err: true},
		{in: "x 1 2", err: true},
	}
	for _, tc := range cases {
		got, err := parseSchedstat([]byte(tc.in))
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("%q: got %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseStraceCounts(t *testing.T) {
	// As strace 6 prints it (-f -c -e trace=fsync,fdatasync), with the
	// attach lines on the same stream.
	table := strings.Join([]string{
		"strace: Process 7998 attached",
		"% time     seconds  usecs/call     calls    errors syscall",
		"------ ----------- ----------- --------- --------- ----------------",
		" 61.20    0.004120         137        30         1 fsync",
		" 38.80    0.002610          43        60           fdatasync",
		"------ ----------- ----------- --------- --------- ----------------",
		"100.00    0.006730          74        90         1 total",
		"strace: Process 7998 detached",
	}, "\n")
	cases := []struct {
		name, in string
		calls    []string
		want     int64
		err      bool
	}{
		{name: "both", in: table, calls: []string{"fsync", "fdatasync"}, want: 90},
		{name: "one of them", in: table, calls: []string{"fdatasync"}, want: 60},
		// strace prints no table when it saw none of the calls.
		{name: "none seen", in: "strace: Process 912 attached\nstrace: Process 912 detached\n", calls: []string{"fsync"}, want: 0},
		{name: "bad calls column", in: "  0.00    0.000000           0      many           fsync", calls: []string{"fsync"}, err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStraceCounts(tc.in, tc.calls...)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("got %d, %v; want %d, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}
