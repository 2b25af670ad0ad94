package peers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// PythonPath is Debian's Python, the one python3-pymodbus is installed for
// (the python3 first on PATH may be another).
const PythonPath = "/usr/bin/python3"

// DefaultPad is how many addresses a unit serves past its highest address
// in the spec, when UnitSpec.Size is 0.
const DefaultPad = 16

// PymodbusSpec is the register map a pymodbus server serves.
type PymodbusSpec struct {
	Port  int // 0 = a free port, bound by the server itself
	Units map[byte]UnitSpec
}

// UnitSpec is the register map of one unit id. Addresses are 0-based
// protocol addresses; unset addresses read as zero (false).
type UnitSpec struct {
	Holding, Input  map[uint16]uint16 // address -> register word
	Coils, Discrete map[uint16]bool
	// Size: each of the unit's four tables serves addresses 0..Size-1; a
	// read reaching past that gets exception 2 (illegal data address).
	// 0 = the unit's highest address in the spec + 1 + DefaultPad.
	Size int
	// Sparse: only the addresses in the spec exist; a read touching any
	// other gets exception 2 (a register map with holes).
	Sparse bool
	// Delay: the unit answers every request this late, and the whole
	// server waits meanwhile (a slow device holding an RS-485 bus).
	Delay time.Duration
}

// Served is the number of addresses each table of the unit serves.
func (u UnitSpec) Served() int {
	if u.Size != 0 {
		return u.Size
	}
	top := -1
	for _, m := range []map[uint16]uint16{u.Holding, u.Input} {
		for a := range m {
			top = max(top, int(a))
		}
	}
	for _, m := range []map[uint16]bool{u.Coils, u.Discrete} {
		for a := range m {
			top = max(top, int(a))
		}
	}
	return min(top+1+DefaultPad, 1<<16)
}

// Pymodbus is a pymodbus 3.0 Modbus TCP server (testdata/peers/
// modbus_server.py) started for one test; the test's cleanup stops it.
// A unit id not in the spec gets no reply at all.
type Pymodbus struct {
	Addr     string // 127.0.0.1:PORT (TCP only)
	URL      string // tcp://127.0.0.1:PORT, as linegate's config wants it (TCP only)
	Port     int
	Device   string   // serial only: the pty end the client opens
	Pty      *PtyPair // serial only
	SpecPath string
	LogPath  string

	p     *process
	spec  pymodbusJSON
	ready chan string // "host:port" (or the serial port) from the script's READY line

	mu    sync.Mutex // guards muted
	muted map[byte]bool
}

// The JSON modbus_server.py reads (see its docstring).
type pymodbusJSON struct {
	Host    string              `json:"host"`
	Port    int                 `json:"port"`
	Serial  *serialJSON         `json:"serial,omitempty"`
	Control string              `json:"control"`
	Units   map[string]unitJSON `json:"units"`
}

type serialJSON struct {
	Port     string `json:"port"`
	Framer   string `json:"framer"`
	Baudrate int    `json:"baudrate"`
}

type unitJSON struct {
	Size     int               `json:"size"`
	Sparse   bool              `json:"sparse,omitempty"`
	DelayMs  int64             `json:"delay_ms,omitempty"`
	Holding  map[uint16]uint16 `json:"holding,omitempty"`
	Input    map[uint16]uint16 `json:"input,omitempty"`
	Coils    map[uint16]bool   `json:"coils,omitempty"`
	Discrete map[uint16]bool   `json:"discrete,omitempty"`
}

// StartPymodbus starts /usr/bin/python3 modbus_server.py on 127.0.0.1 with
// spec, and returns once it listens.
func StartPymodbus(t testing.TB, spec PymodbusSpec) *Pymodbus {
	t.Helper()
	return startPymodbus(t, spec, nil, nil)
}

func startPymodbus(t testing.TB, spec PymodbusSpec, serial *serialJSON, pty *PtyPair) *Pymodbus {
	t.Helper()
	need(t, PythonPath, "python3")
	script := filepath.Join(Dir(t), "modbus_server.py")
	if _, stderr, err := execOutput(PythonPath, "-c", "import pymodbus.server"); err != nil {
		t.Fatalf("pymodbus: %s cannot import pymodbus (install the Debian package python3-pymodbus): %v\n%s", PythonPath, err, stderr)
	}
	if spec.Port == 1883 {
		t.Fatal("pymodbus: port 1883 is reserved for the system broker")
	}
	js := pymodbusJSON{Host: "127.0.0.1", Port: spec.Port, Units: map[string]unitJSON{}}
	for id, u := range spec.Units {
		size := u.Served()
		if size < 1 || size > 1<<16 {
			t.Fatalf("pymodbus: unit %d: size %d: want 1..65536", id, size)
		}
		for _, addrs := range [][]uint16{keys(u.Holding), keys(u.Input), keys(u.Coils), keys(u.Discrete)} {
			for _, a := range addrs {
				if int(a) >= size {
					t.Fatalf("pymodbus: unit %d: address %d outside the served 0..%d", id, a, size-1)
				}
			}
		}
		js.Units[strconv.Itoa(int(id))] = unitJSON{Size: size, Sparse: u.Sparse, DelayMs: u.Delay.Milliseconds(),
			Holding: u.Holding, Input: u.Input, Coils: u.Coils, Discrete: u.Discrete}
	}
	dir := t.TempDir()
	js.Serial = serial
	js.Control = filepath.Join(dir, "muted")
	s := &Pymodbus{
		SpecPath: filepath.Join(dir, "spec.json"),
		LogPath:  filepath.Join(dir, "pymodbus.log"),
		Pty:      pty,
		spec:     js,
		ready:    make(chan string, 1),
		muted:    map[byte]bool{},
	}
	if pty != nil {
		s.Device = pty.B
	}
	s.p = newProcess(t, "pymodbus", s.LogPath, PythonPath, script, s.SpecPath)
	s.p.onLine = func(line string) {
		if addr, ok := strings.CutPrefix(line, "READY "); ok {
			select {
			case s.ready <- addr:
			default:
			}
		}
	}
	s.Start()
	return s
}

func keys[V any](m map[uint16]V) []uint16 {
	out := make([]uint16, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Start starts the server again after Stop or Kill, on the same port, and
// waits until it listens.
func (s *Pymodbus) Start() {
	t := s.p.t
	t.Helper()
	b, err := json.MarshalIndent(s.spec, "", " ")
	if err == nil {
		err = os.WriteFile(s.SpecPath, b, 0o644)
	}
	if err != nil {
		t.Fatalf("pymodbus: spec: %v", err)
	}
	select {
	case <-s.ready: // a stale line from an earlier run
	default:
	}
	if err := s.p.start(); err != nil {
		t.Fatalf("pymodbus: %v", err)
	}
	var addr string
	s.p.waitReady(startTimeout, "READY line", func() bool {
		select {
		case addr = <-s.ready:
			return true
		default:
			return false
		}
	})
	if s.spec.Serial != nil {
		if addr != s.spec.Serial.Port {
			s.p.stop()
			t.Fatalf("pymodbus: READY %q: want %s", addr, s.spec.Serial.Port)
		}
		return
	}
	_, portText, _ := strings.Cut(addr, ":")
	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || (s.Port != 0 && port != s.Port) {
		s.p.stop()
		t.Fatalf("pymodbus: READY %q: want 127.0.0.1:%d", addr, s.Port)
	}
	// Restarts reuse the port the first run got.
	s.Port, s.spec.Port = port, port
	s.Addr = hostPort(port)
	s.URL = "tcp://" + s.Addr
}

// Stop ends the server (SIGTERM, then SIGKILL after 5s) and waits for it to
// exit; clients see their connection closed.
func (s *Pymodbus) Stop() { s.p.stop() }

// Kill ends the server with SIGKILL.
func (s *Pymodbus) Kill() { s.p.kill() }

// Running tells whether the server process is alive.
func (s *Pymodbus) Running() bool { return s.p.running() }

// Log returns the end of the server's log (all runs).
func (s *Pymodbus) Log() string { return s.p.log() }
