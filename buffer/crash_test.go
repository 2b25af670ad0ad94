package buffer

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// crashChildEnv names the buffer file for the child process of
// TestCrashRecovery (the test binary re-executed).
const crashChildEnv = "LINEGATE_BUFFER_CRASH_CHILD"

// TestCrashChild is the child: it appends and commits as fast as it can,
// reporting on stdout what it knows is durable ("committed N": every seq up
// to N) and which seqs it is about to acknowledge ("acking N"), until it is
// killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("helper process for TestCrashRecovery")
	}
	// A 1ms commit interval makes the kill likely to land inside a commit.
	q, err := Open(Options{Path: path, CommitInterval: time.Millisecond, MaxSize: 64 << 20})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	out := bufio.NewWriter(os.Stdout)
	for round := 0; ; round++ {
		var last uint64
		for range 40 {
			if last, err = q.Append(sampleMessage(0, 10)); err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
		}
		if err := q.Flush(); err != nil {
			fmt.Println("error", err)
			os.Exit(2)
		}
		fmt.Fprintln(out, "committed", last)
		// Now and then acknowledge everything but the newest 100, durably.
		if round%5 == 4 && last > 100 {
			// Announce before acking: the parent must know which seqs
			// may be gone before the kill can land.
			fmt.Fprintln(out, "acking", last-100)
			out.Flush()
			ms, err := q.Read(0, 1<<20)
			if err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
			for _, m := range ms {
				if m.Seq <= last-100 {
					q.Ack(m.Seq)
				}
			}
			if err := q.Flush(); err != nil {
				fmt.Println("error", err)
				os.Exit(2)
			}
		}
		// Messages appended but never flushed: the commit window a kill
		// may lose.
		for range 7 {
			q.Append(sampleMessage(0, 3))
		}
		out.Flush()
	}
}

func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	path := tempPath(t)
	var committed, acked uint64
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Kill after a number of durable commits that varies per round.
		// Lines still in the pipe after the kill were written before it,
		// so they count too.
		want := 30 + round*17
		seen := 0
		handle := func(line string) {
			kind, num, _ := strings.Cut(line, " ")
			n, err := strconv.ParseUint(num, 10, 64)
			switch {
			case kind == "committed" && err == nil:
				committed = max(committed, n)
				seen++
			case kind == "acking" && err == nil:
				acked = max(acked, n)
			default:
				t.Errorf("child: %s", line)
			}
		}
		deadline := time.After(60 * time.Second)
	read:
		for seen < want {
			select {
			case line, ok := <-lines:
				if !ok {
					break read
				}
				handle(line)
			case <-deadline:
				t.Error("child too slow")
				break read
			}
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL on Unix
			t.Fatal(err)
		}
		for line := range lines {
			handle(line)
		}
		cmd.Wait()
		if t.Failed() {
			t.FailNow()
		}
		if seen < want {
			t.Fatalf("round %d: child stopped after %d commits", round, seen)
		}

		// Every seq the child saw committed (and did not see acked) is
		// there, the file opens clean, and seq continues past them.
		logs := &logBuffer{}
		q := openTest(t, Options{Path: path, MaxSize: 64 << 20, Logger: logs.logger()})
		if moved, _ := filepath.Glob(path + ".corrupt-*"); len(moved) > 0 || strings.Contains(logs.String(), "level=ERROR") {
			t.Fatalf("round %d: file damaged by the kill:\n%s", round, logs)
		}
		got := readAll(t, q)
		have := make(map[uint64]bool, len(got))
		for _, m := range got {
			have[m.Seq] = true
		}
		for s := acked + 1; s <= committed; s++ {
			if !have[s] {
				t.Fatalf("round %d: seq %d was reported committed (acked up to %d, committed up to %d) but is missing",
					round, s, acked, committed)
			}
		}
		if st := q.Stats(); st.NextSeq <= committed || st.Dropped != 0 || st.Messages != len(got) {
			t.Fatalf("round %d: stats %+v after committed %d", round, st, committed)
		}
		t.Logf("round %d: committed %d, acked %d, found %d messages up to %d", round, committed, acked, len(got), got[len(got)-1].Seq)
		mustClose(t, q)
	}
}
