package peers

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"
)

// NodePath is the Node.js the OPC UA peer runs on (node-opcua 2.182 wants
// Node 20; 2.183+ want 22.13+).
const NodePath = "node"

// nodeStartTimeout: node-opcua creates its certificate on a first start,
// which takes several seconds more than a start-up.
const nodeStartTimeout = 60 * time.Second

// NodeOPCUAOptions configures StartNodeOPCUA.
type NodeOPCUAOptions struct {
	Port int // 0 = a free port, bound by the server itself
	// AutoAccept makes the server trust any client certificate; off, it
	// refuses linegate's until it is copied into PKIDir/trusted/certs.
	AutoAccept bool
	// User and Password is the one login the server accepts (besides
	// anonymous).
	User, Password string
	// Renumber starts the server as after a PLC program download: the
	// plant namespace has another index, Plant/A..C other numeric ids.
	// SetRenumber changes it for the next Start.
	Renumber bool
	// PlainPassword "first" offers a username token that sends the
	// password unencrypted on the None endpoint before the encrypted one;
	// "only" offers it alone ("" neither).
	PlainPassword string
	// CertFile and KeyFile (PEM) replace the server's own certificate; a
	// CertFile with leaf + CA makes it send the chain. ApplicationURI is
	// the server's (that of the certificate). SetCertificate changes them
	// for the next Start.
	CertFile, KeyFile, ApplicationURI string
	// HiddenLimit, when > 0, makes the server refuse reads and
	// CreateMonitoredItems of more nodes than this with
	// BadTooManyOperations while it states no limit.
	HiddenLimit int
}

// NodeOPCUA is a node-opcua server (testdata/peers/opcua_server.js) started
// for one test; the test's cleanup stops it. Endpoints None/None and
// Basic256Sha256/SignAndEncrypt; nodes ns=1;s=Oven.Temperature (Double,
// moving), Oven.Parts (UInt32), Oven.Recipe (String "PCB-4711"),
// Oven.Heater (Boolean), Oven.Sensor4 (BadSensorFailure), Oven.Level (0..1 in
// steps of 0.02 every 100 ms), browsable as
// Objects/Line1/Oven/<name>; ns=1;s=Quiet.Setpoint (Double 180.5),
// Quiet.Mode (Int32 3), Quiet.Batch (String "B-0815"), which never change,
// Quiet.Locked (Double 5, read-only: a Write gets BadNotWritable);
// Objects/Plant/A, B, C (Double 1.5, 2.5, 3.5) in namespace
// urn:linegate:plant, with numeric ids and as s=Plant.A etc. See
// opcua_server.js.
type NodeOPCUA struct {
	Endpoint string // opc.tcp://127.0.0.1:PORT
	Addr     string
	Port     int
	// PKIDir is the server's certificate folder; it survives restarts, so
	// the server keeps its certificate.
	PKIDir   string
	SpecPath string
	LogPath  string

	p     *process
	spec  map[string]any
	ready chan string

	mu       sync.Mutex
	sessions int             // CREATE_SESSION lines, all runs
	refused  int             // TOO_MANY_OPERATIONS lines, all runs
	logins   []string        // LOGIN lines: the user token policy ids
	lines    map[string]bool // control acknowledgements seen ("PUBLISH FROZEN")
}

// StartNodeOPCUA starts node opcua_server.js and returns once it listens.
// It fails the test when node or testdata/peers/node_modules is missing
// (run npm ci in testdata/peers; .ci/run does).
func StartNodeOPCUA(t testing.TB, opts NodeOPCUAOptions) *NodeOPCUA {
	t.Helper()
	need(t, NodePath, "nodejs")
	dir := Dir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-opcua", "package.json")); err != nil {
		t.Fatalf("node-opcua is not installed: run npm ci in %s (.ci/run does): %v", dir, err)
	}
	if opts.Port == 1883 {
		t.Fatal("node-opcua: port 1883 is reserved for the system broker")
	}
	tmp := t.TempDir()
	s := &NodeOPCUA{
		PKIDir:   filepath.Join(tmp, "pki"),
		SpecPath: filepath.Join(tmp, "spec.json"),
		LogPath:  filepath.Join(tmp, "node-opcua.log"),
		ready:    make(chan string, 1),
		spec: map[string]any{"port": opts.Port, "auto_accept": opts.AutoAccept,
			"user": opts.User, "password": opts.Password, "renumber": opts.Renumber, "hidden_limit": opts.HiddenLimit, "plain_password": opts.PlainPassword,
			"cert_file": opts.CertFile, "key_file": opts.KeyFile, "application_uri": opts.ApplicationURI},
		lines: map[string]bool{},
	}
	s.spec["pki"] = s.PKIDir
	s.p = newProcess(t, "node-opcua", s.LogPath, NodePath, filepath.Join(dir, "opcua_server.js"), s.SpecPath)
	s.p.onLine = func(line string) {
		if port, ok := strings.CutPrefix(line, "READY "); ok {
			select {
			case s.ready <- port:
			default:
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		switch {
		case strings.HasPrefix(line, "CREATE_SESSION "):
			s.sessions++
		case strings.HasPrefix(line, "TOO_MANY_OPERATIONS "):
			s.refused++
		case strings.HasPrefix(line, "LOGIN "):
			s.logins = append(s.logins, strings.TrimPrefix(line, "LOGIN "))
		case strings.HasPrefix(line, "PUBLISH "), strings.HasPrefix(line, "DELETED_SUBSCRIPTIONS "):
			s.lines[line] = true
		}
	}
	s.Start()
	return s
}

// Start starts the server again after Stop or Kill, on the same port and
// with the same certificate, and waits until it listens.
func (s *NodeOPCUA) Start() {
	t := s.p.t
	t.Helper()
	b, err := json.Marshal(s.spec)
	if err == nil {
		err = os.WriteFile(s.SpecPath, b, 0o644)
	}
	if err != nil {
		t.Fatalf("node-opcua: spec: %v", err)
	}
	select {
	case <-s.ready: // a stale line from an earlier run
	default:
	}
	if err := s.p.start(); err != nil {
		t.Fatalf("node-opcua: %v", err)
	}
	var text string
	s.p.waitReady(nodeStartTimeout, "READY line", func() bool {
		select {
		case text = <-s.ready:
			return true
		default:
			return false
		}
	})
	port, err := strconv.Atoi(text)
	if err != nil || port <= 0 || (s.Port != 0 && port != s.Port) {
		s.p.stop()
		t.Fatalf("node-opcua: READY %q: want port %d", text, s.Port)
	}
	s.Port, s.spec["port"] = port, port
	s.Addr = hostPort(port)
	s.Endpoint = "opc.tcp://" + s.Addr
}

// TrustClient copies a client certificate (DER) into the server's trusted
// certificates and clears its rejected ones; node-opcua watches the
// folders, so it takes effect within a moment.
func (s *NodeOPCUA) TrustClient(der []byte, name string) {
	t := s.p.t
	t.Helper()
	dir := filepath.Join(s.PKIDir, "trusted", "certs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".der"), der, 0o644); err != nil {
		t.Fatal(err)
	}
	// node-opcua keeps a refused certificate's status while its copy in
	// rejected/ exists: trusting one moves it.
	rejected, _ := filepath.Glob(filepath.Join(s.PKIDir, "rejected", "*"))
	for _, f := range rejected {
		os.Remove(f)
	}
}

// Sessions is how many sessions clients created on the server (all runs).
func (s *NodeOPCUA) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Logins are the user token policy ids of the sessions activated so far
// ("username_plain": the password went unencrypted).
func (s *NodeOPCUA) Logins() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.logins...)
}

// TooManyOperations is how many calls the server refused with
// BadTooManyOperations under HiddenLimit (all runs).
func (s *NodeOPCUA) TooManyOperations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// SetCertificate sets the certificate and key files for the next Start.
func (s *NodeOPCUA) SetCertificate(certFile, keyFile string) {
	s.spec["cert_file"], s.spec["key_file"] = certFile, keyFile
}

// SetRenumber sets the Renumber option for the next Start.
func (s *NodeOPCUA) SetRenumber(on bool) { s.spec["renumber"] = on }

// FreezePublish makes the server drop Publish requests unanswered (on) or
// answer them again (off), the session otherwise alive; it returns once the
// server has acknowledged.
func (s *NodeOPCUA) FreezePublish(on bool) {
	want := "PUBLISH THAWED"
	if on {
		want = "PUBLISH FROZEN"
	}
	s.control(sigUsr1, want)
}

// DeleteSubscriptions deletes every session's subscriptions on the server
// (what a server does to a subscription whose lifetime ran out).
func (s *NodeOPCUA) DeleteSubscriptions() { s.control(sigUsr2, "DELETED_SUBSCRIPTIONS ") }

// control sends sig and waits for the acknowledging line (a prefix).
func (s *NodeOPCUA) control(sig os.Signal, ack string) {
	t := s.p.t
	t.Helper()
	seen := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for l := range s.lines {
			if strings.HasPrefix(l, ack) {
				return true
			}
		}
		return false
	}
	s.mu.Lock()
	for l := range s.lines {
		if strings.HasPrefix(l, ack) {
			delete(s.lines, l)
		}
	}
	s.mu.Unlock()
	if err := s.p.notify(sig); err != nil {
		t.Fatalf("node-opcua: %v", err)
	}
	testkit.WaitFor(t, 10*time.Second, "node-opcua: "+ack, seen)
}

// Stop ends the server (SIGTERM, then SIGKILL after 5s) and waits for it.
func (s *NodeOPCUA) Stop() { s.p.stop() }

// Kill ends the server with SIGKILL.
func (s *NodeOPCUA) Kill() { s.p.kill() }

// Running tells whether the server process is alive.
func (s *NodeOPCUA) Running() bool { return s.p.running() }

// Log returns the end of the server's log (all runs).
func (s *NodeOPCUA) Log() string { return s.p.log() }

func (s *NodeOPCUA) String() string { return fmt.Sprintf("node-opcua %s", s.Endpoint) }
