package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/drivers/sim"
)

// frozenLine is a simulated press line with known register values.
func frozenLine(t *testing.T, units ...byte) *sim.PressLine {
	t.Helper()
	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: units})
	if err := line.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Stop() })
	line.Freeze(true)
	line.Set(1, "holding", 0, 0x41BC, 0x0000)                  // 23.5 ABCD
	line.Set(1, "holding", 2, 0x0FDB, 0x4049)                  // 3.1415927 CDAB
	line.Set(1, "holding", 50, 0x4142, 0x432D, 0x3031, 0x0000) // "ABC-01"
	line.Set(1, "input", 4, 1203)
	line.Set(1, "discrete", 0, 1, 0, 1)
	return line
}

func TestModbusCommands(t *testing.T) {
	line := frozenLine(t, 1, 2)
	addr := line.Addr()
	dead := "127.0.0.1:" + strconv.Itoa(testkit.FreePort(t))

	tests := []struct {
		name   string
		args   []string
		code   int
		golden string   // stdout golden file
		stdout []string // or substrings
		stderr []string
	}{
		{"read float32", []string{"modbus", "read", addr, "-a", "0", "-n", "1", "-t", "float32"}, exitOK, "modbus_read_float32.txt", nil, nil},
		{"read float32 CDAB", []string{"modbus", "read", "tcp://" + addr, "-a", "2", "-t", "float32", "-b", "CDAB"}, exitOK, "", []string{"0x0FDB 0x4049  3.1415927"}, nil},
		{"read words", []string{"modbus", "read", addr, "-r", "input", "-a", "3", "-n", "3"}, exitOK, "modbus_read_words.txt", nil, nil},
		{"read string json", []string{"modbus", "read", addr, "-a", "50", "-t", "string", "--length", "4", "--json"}, exitOK, "", []string{`"value": "ABC-01"`, `"raw": [`, `16706`}, nil},
		{"read discrete", []string{"modbus", "read", addr, "-r", "discrete", "-a", "0", "-n", "3"}, exitOK, "modbus_read_discrete.txt", nil, nil},
		{"read past the end", []string{"modbus", "read", addr, "-a", "199", "-n", "2"}, exitFailed, "", []string{"200      -       ERROR read holding 0x00C", "modbus exception 2 (illegal data address)"}, []string{"of 2 value(s) not read"}},
		{"read unit 2", []string{"modbus", "read", addr, "-u", "2", "-a", "0"}, exitOK, "", []string{"unit 2"}, nil},
		{"device down", []string{"modbus", "read", dead}, exitFailed, "", nil, []string{"connection refused"}},
		{"bad type", []string{"modbus", "read", addr, "-t", "float"}, exitUsage, "", nil, []string{`type "float"`}},
		{"bad unit", []string{"modbus", "read", addr, "-u", "300"}, exitUsage, "", nil, []string{"--unit 300"}},
		{"no address", []string{"modbus", "read"}, exitUsage, "", nil, []string{"want ADDRESS"}},
		{"no subcommand", []string{"modbus"}, exitUsage, "", nil, []string{"name a subcommand"}},
		{"write not allowed", []string{"modbus", "write", addr, "-a", "100", "--values", "7"}, exitUsage, "", nil, []string{"--allow-write"}},
		{"write cannot confirm", []string{"modbus", "write", addr, "-a", "100", "--values", "7", "--allow-write"}, exitUsage, "", nil, []string{"add --yes"}},
		{"write bad value", []string{"modbus", "write", addr, "-a", "100", "--values", "70000", "--allow-write", "--yes"}, exitUsage, "", nil, []string{"16-bit"}},
		{"write input refused", []string{"modbus", "write", addr, "-r", "input", "--values", "1", "--allow-write", "--yes"}, exitUsage, "", nil, []string{"only holding and coil"}},
		{"write words", []string{"modbus", "write", addr, "-a", "100", "--values", "1500,0x10", "--allow-write", "--yes"}, exitOK, "", []string{"read back 0x05DC 0x0010"},
			[]string{`level=WARN msg="modbus write" device=tcp://` + addr + ` unit=1 register=holding address=100 values=1500,0x10`}},
		{"write coils", []string{"modbus", "write", addr, "-r", "coil", "-a", "5", "--values", "on,off,1", "--allow-write", "-y"}, exitOK, "", []string{"read back [true false true]"}, nil},
		{"write float32 CDAB", []string{"modbus", "write", addr, "-a", "110", "-t", "float32", "-b", "CDAB", "--values", "12.5,-3", "--allow-write", "-y"}, exitOK, "",
			[]string{"write holding 110 = 12.5,-3 (float32 CDAB): written; read back 0x0000 0x4148 = 12.5, 0x0000 0xC040 = -3"}, nil},
		{"write int32 DCBA", []string{"modbus", "write", addr, "-a", "114", "-t", "int32", "-b", "DCBA", "--values", "-100000", "--allow-write", "-y"}, exitOK, "",
			[]string{"read back 0x6079 0xFEFF = -100000"}, nil},
		{"write string", []string{"modbus", "write", addr, "-a", "120", "-t", "string", "--length", "3", "--values", "A,B", "--allow-write", "-y"}, exitOK, "",
			[]string{`read back 0x412C 0x4200 0x0000 = "A,B"`}, nil},
		{"write bad typed value", []string{"modbus", "write", addr, "-a", "110", "-t", "int16", "--values", "40000", "--allow-write", "-y"}, exitUsage, "", nil, []string{`value "40000": want int16`}},
		{"write coil typed", []string{"modbus", "write", addr, "-r", "coil", "-t", "float32", "--values", "1", "--allow-write", "-y"}, exitUsage, "", nil, []string{"coils are bool"}},
		{"write past the end", []string{"modbus", "write", addr, "-a", "199", "--values", "1,2", "--allow-write", "-y"}, exitFailed, "", nil, []string{"write holding 0x00C7+2: modbus exception 2"}},
		{"scan", []string{"modbus", "scan", addr, "--units", "1-3", "--addresses", "0-999", "--timeout", "100ms"}, exitOK, "modbus_scan.txt", nil, nil},
		{"scan units only json", []string{"modbus", "scan", addr, "--units", "2,3", "--units-only", "--timeout", "100ms", "--json"}, exitOK, "", []string{`"unit": 2`, `"silent": [
    3
  ]`}, nil},
		{"scan nobody", []string{"modbus", "scan", addr, "--units", "5", "--timeout", "50ms"}, exitFailed, "", []string{"0 unit(s) answer"}, []string{"no unit id of 5 answered"}},
		{"scan device down", []string{"modbus", "scan", dead, "--units", "1"}, exitFailed, "", nil, []string{"connection refused"}},
		{"scan bad units", []string{"modbus", "scan", addr, "--units", "1-300"}, exitUsage, "", nil, []string{"--units"}},
		{"watch piped", []string{"modbus", "watch", addr, "-a", "0", "-t", "float32", "--cycles", "2", "--interval", "10ms"}, exitOK, "", []string{"0x41BC 0x0000  23.5"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _ := runCLI(t, tt.args, tt.code, tt.stdout, tt.stderr)
			if tt.golden != "" {
				testkit.Golden(t, filepath.Join("testdata", tt.golden), []byte(strings.ReplaceAll(out, addr, "ADDR")))
			}
		})
	}
}

func TestModbusWatchJSONLines(t *testing.T) {
	line := frozenLine(t, 1)
	code, out, errOut := run(t, "modbus", "watch", line.Addr(), "-a", "0", "-t", "float32", "--cycles", "3", "--interval", "10ms", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), out)
	}
	for _, l := range lines {
		var doc readDoc
		if err := json.Unmarshal([]byte(l), &doc); err != nil || len(doc.Values) != 1 || doc.Values[0].Value != 23.5 {
			t.Fatalf("line %s: %v %+v", l, err, doc)
		}
	}
}

// startCmd runs a long-running command in-process; stop cancels it like
// Ctrl-C and returns its exit code.
func startCmd(t *testing.T, args ...string) (out *syncBuffer, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out = &syncBuffer{}
	errOut := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- execute(ctx, args, out, errOut) }()
	var once sync.Once
	code := -1
	stop = func() int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(15 * time.Second):
				t.Errorf("%v did not stop", args)
			}
			if t.Failed() {
				t.Logf("%v stderr:\n%s", args, errOut.String())
			}
		})
		return code
	}
	t.Cleanup(func() { stop() })
	return out, stop
}

type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestSimModbus(t *testing.T) {
	out, stop := startCmd(t, "sim", "modbus", "--listen", "127.0.0.1:0", "--units", "1-3")
	addrRE := regexp.MustCompile(`modbus tcp://(127\.0\.0\.1:\d+), unit\(s\) 1-3`)
	testkit.WaitFor(t, 10*time.Second, "the simulator's address", func() bool { return addrRE.MatchString(out.String()) })
	addr := addrRE.FindStringSubmatch(out.String())[1]
	code, got, errOut := run(t, "modbus", "read", addr, "-u", "3", "-a", "50", "-t", "string", "--length", "4")
	if code != exitOK || !strings.Contains(got, `"PRESS-03"`) {
		t.Fatalf("read from sim: exit %d\n%s%s", code, got, errOut)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("sim exit %d", code)
	}
	if !strings.Contains(out.String(), "sim modbus: stopped") {
		t.Fatalf("stdout %s", out.String())
	}
	if code, _, errOut := run(t, "sim", "modbus", "--units", "0"); code != exitUsage {
		t.Fatalf("--units 0: exit %d %s", code, errOut)
	}
	if code, _, _ := run(t, "sim"); code != exitUsage {
		t.Fatalf("sim without protocol: exit %d", code)
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "powershell", "zsh", "fish"} {
		t.Run(shell, func(t *testing.T) {
			code, out, errOut := run(t, "completion", shell)
			if code != exitOK || !strings.Contains(out, "linegate") || len(out) < 1000 {
				t.Fatalf("exit %d, %d bytes: %s", code, len(out), errOut)
			}
		})
	}
}

// A bad flag is named as the user typed it, not as the driver's ad-hoc
// tag ("modbus/0: type ...").
func TestModbusFlagErrorsNameTheFlag(t *testing.T) {
	dead := "127.0.0.1:" + strconv.Itoa(testkit.FreePort(t))
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"modbus", "read", dead, "-t", "flot"}, `--type "flot": want bool, int16`},
		{[]string{"modbus", "read", dead, "-b", "XX", "-t", "float32"}, `--byte-order "XX": want ABCD`},
		{[]string{"modbus", "read", dead, "-r", "holdin"}, `--register "holdin": want holding`},
		{[]string{"modbus", "read", dead, "-r", "coil", "-t", "uint16"}, `--type uint16: a coil is one bit`},
		{[]string{"modbus", "watch", dead, "-t", "string"}, `--type string needs --length`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[3:], " "), func(t *testing.T) {
			_, errOut := runCLI(t, tt.args, exitUsage, nil, []string{tt.want})
			if strings.Contains(errOut, "modbus/") {
				t.Errorf("names an internal device: %s", errOut)
			}
		})
	}
}
