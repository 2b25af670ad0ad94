package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/configs"
)

// TestLogFileRotates writes past max_size and checks the file is rotated
// and no more than max_files old files are kept.
func TestLogFileRotates(t *testing.T) {
	dir := t.TempDir()
	lc := configs.Log{File: filepath.Join(dir, "sub", "linegate.log"), MaxSize: 1 << 20, MaxFiles: 2, Format: "json"}
	lj, err := openLogFile(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer lj.Close()
	log, err := newLogger(lj, "json", nil)
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 1000)
	for i := range 4000 { // ~4 MiB: three rotations
		log.Info("line", "i", i, "pad", pad)
	}
	files := func() []os.DirEntry {
		es, err := os.ReadDir(filepath.Dir(lc.File))
		if err != nil {
			t.Fatal(err)
		}
		return es
	}
	// lumberjack removes the oldest files in the background.
	testkit.WaitFor(t, 10*time.Second, "old files removed", func() bool { return len(files()) == 1+lc.MaxFiles })
	for _, e := range files() {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > int64(lc.MaxSize) {
			t.Errorf("%s is %d bytes, over max_size", e.Name(), info.Size())
		}
	}
	data, err := os.ReadFile(lc.File)
	if err != nil {
		t.Fatal(err)
	}
	last := strings.Split(strings.TrimSpace(string(data)), "\n")
	var rec struct {
		Msg string `json:"msg"`
		I   int    `json:"i"`
	}
	if err := json.Unmarshal([]byte(last[len(last)-1]), &rec); err != nil || rec.I != 3999 {
		t.Fatalf("last line %q: %v", last[len(last)-1], err)
	}
}

// TestLogSectionAndFlags runs the agent with a log section: the file gets
// the log in the configured format, and a flag wins over the config.
func TestLogSectionAndFlags(t *testing.T) {
	tests := []struct {
		name   string
		flags  []string
		wantIn string // in the log file
	}{
		{"config json file", nil, `"msg":"linegate running"`},
		{"flag format wins", []string{"--log-format", "text"}, `msg="linegate running"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			logPath := filepath.Join(dir, "logs", "agent.log")
			cfgPath := filepath.Join(dir, "linegate.yaml")
			text := fmt.Sprintf(reloadConfigHead, filepath.Join(dir, "b.db"), "127.0.0.1:1", 64) +
				"log: {file: logs/agent.log, format: json, level: info}\n"
			text = strings.Replace(text, "devices:\n", "", 1) + "devices:\n" + fmt.Sprintf(reloadDevice("p", 1, "1s"), "127.0.0.1:1")
			if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			var mu sync.Mutex
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan int, 1)
			go func() {
				done <- execute(ctx, append([]string{"run", "-c", cfgPath}, tc.flags...), &strings.Builder{}, &lockedWriter{w: &stderr, mu: &mu})
			}()
			testkit.WaitFor(t, 10*time.Second, "the log file", func() bool {
				b, _ := os.ReadFile(logPath)
				return strings.Contains(string(b), tc.wantIn)
			})
			cancel()
			if code := <-done; code != 0 {
				t.Fatalf("exit %d", code)
			}
			mu.Lock()
			defer mu.Unlock()
			if strings.Contains(stderr.String(), "linegate running") {
				t.Fatalf("the log went to stderr too:\n%s", stderr.String())
			}
		})
	}
}
