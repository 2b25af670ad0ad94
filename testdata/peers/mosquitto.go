package peers

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"
)

// MosquittoPath is where Debian's mosquitto package puts the broker.
const MosquittoPath = "/usr/sbin/mosquitto"

// startTimeout bounds a peer's start-up: well above the second they take.
const startTimeout = 15 * time.Second

// MosquittoOptions configures StartMosquitto.
type MosquittoOptions struct {
	Port int // 0 = a free port
	// Persistence keeps sessions and queued messages in the test's temporary
	// directory across Stop/Start (saved on a clean Stop, not on Kill).
	Persistence bool
	// GlobalConfig goes first in the file, before the listener: options that
	// must precede listener settings (per_listener_settings true).
	GlobalConfig string
	// ExtraConfig goes after the plain listener's settings: options for it
	// (password_file, ...) or more listeners (listener PORT2 127.0.0.1 ...).
	ExtraConfig string
}

// Mosquitto is a broker started for one test; the test's cleanup stops it.
type Mosquitto struct {
	Addr     string // 127.0.0.1:PORT
	URL      string // tcp://127.0.0.1:PORT
	Port     int
	Dir      string // the broker's temporary directory (config, log, data)
	ConfPath string
	LogPath  string

	p *process
}

// StartMosquitto writes a config file and starts /usr/sbin/mosquitto on
// 127.0.0.1 (never 1883), returning once the port accepts connections.
// Anonymous clients are allowed on that listener; the broker's log goes to a
// file shown if the test fails.
func StartMosquitto(t testing.TB, opts MosquittoOptions) *Mosquitto {
	t.Helper()
	need(t, MosquittoPath, "mosquitto")
	port := opts.Port
	if port == 0 {
		port = testkit.FreePort(t)
	}
	if port == 1883 {
		t.Fatal("mosquitto: port 1883 belongs to the system broker; use another")
	}
	dir := t.TempDir()
	m := &Mosquitto{
		Addr:     hostPort(port),
		URL:      "tcp://" + hostPort(port),
		Port:     port,
		Dir:      dir,
		ConfPath: filepath.Join(dir, "mosquitto.conf"),
		LogPath:  filepath.Join(dir, "mosquitto.log"),
	}
	if err := os.WriteFile(m.ConfPath, []byte(mosquittoConf(port, dir, opts)), 0o644); err != nil {
		t.Fatalf("mosquitto: %v", err)
	}
	m.p = newProcess(t, "mosquitto", m.LogPath, MosquittoPath, "-c", m.ConfPath)
	m.Start()
	return m
}

func mosquittoConf(port int, dir string, opts MosquittoOptions) string {
	var b strings.Builder
	if opts.GlobalConfig != "" {
		fmt.Fprintf(&b, "%s\n", opts.GlobalConfig)
	}
	// As root, Mosquitto would switch to the mosquitto user, which cannot
	// read the test's 0700 temporary directory.
	if os.Geteuid() == 0 {
		b.WriteString("user root\n")
	}
	b.WriteString("log_dest stderr\n") // stdout is block-buffered: shows nothing
	b.WriteString("log_timestamp_format %H:%M:%S\n")
	if opts.Persistence {
		fmt.Fprintf(&b, "persistence true\npersistence_location %s/\n", filepath.Join(dir, "data"))
	} else {
		b.WriteString("persistence false\n")
	}
	fmt.Fprintf(&b, "listener %d 127.0.0.1\nallow_anonymous true\n", port)
	if opts.ExtraConfig != "" {
		fmt.Fprintf(&b, "%s\n", opts.ExtraConfig)
	}
	return b.String()
}

// Start starts the broker again, on the same port and config, after Stop or
// Kill, and waits until the port accepts connections.
func (m *Mosquitto) Start() {
	m.p.t.Helper()
	if err := os.MkdirAll(filepath.Join(m.Dir, "data"), 0o755); err != nil {
		m.p.t.Fatalf("mosquitto: %v", err)
	}
	if err := m.p.start(); err != nil {
		m.p.t.Fatalf("mosquitto: %v", err)
	}
	m.p.waitReady(startTimeout, "listener on "+m.Addr, func() bool { return dialable(m.Addr) })
}

// Stop ends the broker cleanly (SIGTERM, then SIGKILL after 5s) and waits
// for it to exit. Clients see their connection closed.
func (m *Mosquitto) Stop() { m.p.stop() }

// Kill ends the broker with SIGKILL: no goodbye to clients, no
// persistence save.
func (m *Mosquitto) Kill() { m.p.kill() }

// Running tells whether the broker process is alive.
func (m *Mosquitto) Running() bool { return m.p.running() }

// Log returns the end of the broker's log (all runs).
func (m *Mosquitto) Log() string { return m.p.log() }
