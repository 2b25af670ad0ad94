package buffer

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A large backlog, once read, is unmapped from the process (release.go);
// reading it again must give the same messages, and a small file is left
// alone.
func TestReleaseMappedPages(t *testing.T) {
	tests := []struct {
		name     string
		messages int
		released bool
	}{
		{"small file stays mapped", 50, false},
		{"large file is released", 8000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tempPath(t)
			q := openTest(t, Options{Path: path})
			for i := range tt.messages {
				ts := time.Unix(int64(i), 0).UTC()
				m := Message{Equipment: "press01", Class: "process", Created: ts}
				for j := range 30 {
					m.Readings = append(m.Readings, Reading{Tag: fmt.Sprintf("tag%03d", j), Value: int64(i * j), TS: ts, Quality: Good})
				}
				mustAppend(t, q, m)
			}
			mustFlush(t, q)
			before := readAll(t, q)
			if len(before) != tt.messages {
				t.Fatalf("read %d messages, want %d", len(before), tt.messages)
			}
			if fileSize(t, path) >= releaseAbove != tt.released {
				t.Fatalf("file is %d bytes: the case does not test what it says", fileSize(t, path))
			}
			mapped := mappedKB(t, path)
			q.commitMu.Lock()
			q.maybeRelease(time.Now())
			q.commitMu.Unlock()
			after := mappedKB(t, path)
			if runtime.GOOS == "linux" {
				switch {
				case tt.released && after != 0:
					t.Errorf("%d kB of the file still mapped after release (%d before)", after, mapped)
				case !tt.released && after != mapped:
					t.Errorf("mapped %d kB, then %d kB: a small file was released", mapped, after)
				}
			}
			again := readAll(t, q)
			if len(again) != len(before) {
				t.Fatalf("read %d messages after release, want %d", len(again), len(before))
			}
			for i := range again {
				if again[i].Seq != before[i].Seq || len(again[i].Readings) != 30 || again[i].Readings[29].Value != before[i].Readings[29].Value {
					t.Fatalf("message %d differs after release: %+v", i, again[i])
				}
			}
		})
	}
}

// mappedKB is the resident size of path's mappings in this process (Linux
// smaps), or -1 elsewhere.
func mappedKB(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return -1
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && fields[5] == path
			continue
		}
		if in && len(fields) == 3 && fields[0] == "Rss:" {
			n, _ := strconv.Atoi(fields[1])
			total += n
		}
	}
	return total
}
