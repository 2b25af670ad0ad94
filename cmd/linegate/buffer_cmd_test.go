package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/internal/testkit"
)

// fillBuffer writes n messages with fixed times into a new buffer file.
func fillBuffer(t *testing.T, path string, n int) {
	t.Helper()
	q, err := buffer.Open(buffer.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 27, 10, 15, 2, 123e6, time.UTC)
	for i := range n {
		ts := base.Add(time.Duration(i) * time.Second)
		if _, err := q.Append(buffer.Message{Created: ts, Equipment: "press01", Class: "process", Readings: []buffer.Reading{
			{Tag: "temperature", Value: 23.5 + float64(i), Unit: "degC", TS: ts},
			{Tag: "speed", Quality: buffer.Bad, Error: "read input 0x0004+1: i/o timeout", TS: ts},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBufferCommands(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "buffer.db")
	fillBuffer(t, path, 5)
	cfg := writeFile(t, "b.yaml", `gateway: {id: line1-pc, site: plant-a, area: assembly, line: line1}
buffer: {path: `+path+`}
uplink: {brokers: [tcp://127.0.0.1:1]}
devices:
  - {name: press01, driver: modbus, address: tcp://127.0.0.1:502, tags: [{name: temperature, class: process, register: holding, address: 0, type: float32}]}
`)
	missing := filepath.Join(dir, "nope.db")

	// In order: later steps see what earlier ones did.
	steps := []struct {
		name   string
		args   []string
		code   int
		golden string
		stdout []string
		stderr []string
	}{
		{"stats", []string{"buffer", "stats", "--path", path}, exitOK, "", []string{"messages  5 (", "seq 1..5, next seq 6", "dropped   0"}, nil},
		{"export", []string{"buffer", "export", "-c", cfg}, exitOK, "buffer_export.jsonl", nil, []string{"exported 5 message(s)"}},
		{"export range", []string{"buffer", "export", "--path", path, "--after", "1", "--before", "4"}, exitOK, "", []string{`"seq":2,`, `"seq":3,`}, nil},
		{"peek json", []string{"buffer", "peek", "-c", cfg, "-n", "1", "--json"}, exitOK, "", []string{`{"schema":"linegate/v1","id":"line1-pc:1","gateway":"line1-pc","seq":1,`}, nil},
		{"peek", []string{"buffer", "peek", "--path", path, "--after", "3"}, exitOK, "", []string{"press01   process    seq 4     (historical)  temperature=26.5 degC  speed=BAD(read input 0x0004+1: i/o timeout)", "(2 of 5 message(s), 0 of 0 event(s))"}, nil},
		{"drop needs --before", []string{"buffer", "drop", "--path", path}, exitUsage, "", nil, []string{"--before SEQ is required"}},
		{"drop cannot confirm", []string{"buffer", "drop", "--path", path, "--before", "3"}, exitUsage, "", nil, []string{"add --yes"}},
		{"drop", []string{"buffer", "drop", "--path", path, "--before", "3", "--yes"}, exitOK, "", []string{"dropped 2 message(s) with seq < 3"}, nil},
		{"drop nothing", []string{"buffer", "drop", "--path", path, "--before", "3", "--yes"}, exitOK, "", []string{"nothing to drop"}, nil},
		{"peek shows the event", []string{"buffer", "peek", "--path", path}, exitOK, "", []string{"event buffer_dropped dropped_seq_from=1 dropped_seq_to=2", "(3 of 3 message(s), 1 of 1 event(s))"}, nil},
		{"compact", []string{"buffer", "compact", "--path", path}, exitOK, "", []string{"compacted:"}, nil},
		{"stats json", []string{"buffer", "stats", "--path", path, "--json"}, exitOK, "", []string{`"messages": 3`, `"oldest_seq": 3`, `"next_seq": 6`, `"events": 1`}, nil},
		{"missing file", []string{"buffer", "stats", "--path", missing}, exitFailed, "", nil, []string{"no such file"}},
		{"no path", []string{"buffer", "stats"}, exitUsage, "", nil, []string{"give -c FILE or --path FILE"}},
		{"both", []string{"buffer", "stats", "-c", cfg, "--path", path}, exitUsage, "", nil, []string{"give -c FILE or --path FILE"}},
		{"no subcommand", []string{"buffer"}, exitUsage, "", nil, []string{"name a subcommand"}},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := runCLI(t, tt.args, tt.code, tt.stdout, tt.stderr)
			if tt.golden != "" {
				testkit.Golden(t, filepath.Join("testdata", tt.golden), []byte(out))
			}
		})
	}
	if _, err := (&bufferTarget{path: missing}).open(true); err == nil {
		t.Fatal("open created a missing buffer")
	}
}

// TestBufferInUse: while the agent holds the file, every buffer command
// says so, points to linegate status, and exits 1.
func TestBufferInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	fillBuffer(t, path, 1)
	q, err := buffer.Open(buffer.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	for _, sub := range [][]string{{"stats"}, {"peek"}, {"export"}, {"compact"}, {"drop", "--before", "2", "--yes"}} {
		t.Run(sub[0], func(t *testing.T) {
			args := append([]string{"buffer"}, sub...)
			code, _, errOut := run(t, append(args, "--path", path)...)
			if code != exitFailed || !strings.Contains(errOut, "in use by another process") || !strings.Contains(errOut, "linegate status") {
				t.Fatalf("exit %d: %s", code, errOut)
			}
		})
	}
	if st := q.Stats(); st.Messages != 1 {
		t.Fatalf("the agent's buffer changed: %+v", st)
	}
}

func TestBufferExportIsContractJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "buffer.db")
	fillBuffer(t, path, 2)
	code, out, errOut := run(t, "buffer", "export", "--path", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var p contractPayload
		if err := json.Unmarshal([]byte(l), &p); err != nil || p.Schema != "linegate/v1" {
			t.Fatalf("%s: %v", l, err)
		}
	}
}

// TestBufferInspectChangesNothing: stats, peek and export pointed at a file
// that is not a buffer (the config, mistaken for it; an empty file; a
// truncated buffer) refuse it, say so, exit 1, and leave it exactly as it
// was: no rename to .corrupt-<time>, no new bbolt file in its place.
func TestBufferInspectChangesNothing(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	fillBuffer(t, good, 3)
	whole, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	files := []struct {
		name, content, want string
	}{
		{"config.yaml", "gateway: {id: gw}\n", "not a healthy linegate buffer"},
		{"empty.db", "", "is empty: not a linegate buffer"},
		{"truncated.db", string(whole[:len(whole)/3]), "nothing was changed"},
	}
	for _, f := range files {
		for _, cmd := range []string{"stats", "peek", "export"} {
			t.Run(f.name+"/"+cmd, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), f.name)
				if err := os.WriteFile(path, []byte(f.content), 0o644); err != nil {
					t.Fatal(err)
				}
				runCLI(t, []string{"buffer", cmd, "--path", path}, exitFailed, nil, []string{f.want})
				got, err := os.ReadFile(path)
				if err != nil || string(got) != f.content {
					t.Fatalf("%s changed the file (err %v): %d bytes, was %d", cmd, err, len(got), len(f.content))
				}
				entries, _ := os.ReadDir(filepath.Dir(path))
				if len(entries) != 1 {
					var names []string
					for _, e := range entries {
						names = append(names, e.Name())
					}
					t.Fatalf("%s left files beside it: %v", cmd, names)
				}
			})
		}
	}
	// A healthy buffer is inspected without a write: same bytes after stats.
	runCLI(t, []string{"buffer", "stats", "--path", good}, exitOK, []string{"messages"}, nil)
	if after, _ := os.ReadFile(good); string(after) != string(whole) {
		t.Fatal("buffer stats changed a healthy buffer file")
	}
}
