package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/drivers/opcua"
	"github.com/linegate/linegate/drivers/sim"
	"github.com/linegate/linegate/testdata/peers"
)

func startTestOven(t *testing.T, secure bool) *sim.Oven {
	t.Helper()
	o := sim.NewOven(sim.OvenOptions{Secure: secure})
	if err := o.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Stop)
	return o
}

func TestOPCUACommands(t *testing.T) {
	o := startTestOven(t, true)
	ep := o.Endpoint()
	pki := t.TempDir()
	thumb := opcua.Thumbprint(o.Certificate())
	dead := "opc.tcp://127.0.0.1:1"

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"endpoints", []string{"opcua", "endpoints", ep}, exitOK, []string{"Aes256_Sha256_RsaPss   SignAndEncrypt", "anonymous,username,certificate", thumb}, nil},
		{"endpoints json", []string{"opcua", "endpoints", ep, "--json"}, exitOK, []string{`"security_policy": "Basic256Sha256"`, `"certificate_thumbprint": "` + thumb}, nil},
		{"endpoints unreachable", []string{"opcua", "endpoints", dead, "--timeout", "1s"}, exitFailed, nil, []string{dead + ": get endpoints"}},
		{"browse", []string{"opcua", "browse", ep, "Objects/Oven01", "--depth", "2", "--pki-dir", pki}, exitOK,
			[]string{"1:Zone1", "  1:Temperature     Variable  ns=1;s=Oven01.Zone1.Temperature", "1:Recipe"}, nil},
		{"browse json", []string{"opcua", "browse", ep, "ns=1;s=Oven01", "--json", "--pki-dir", pki}, exitOK,
			[]string{`"node_id": "ns=1;s=Oven01.Setpoint"`, `"path": "Setpoint"`}, nil},
		{"browse bad path", []string{"opcua", "browse", ep, "Objects/Nope", "--pki-dir", pki}, exitFailed, nil, []string{`no "Nope" under Objects`}},
		{"read", []string{"opcua", "read", ep, "ns=1;s=Oven01.Setpoint", "Oven01/Recipe", "Oven01/ZoneTemperatures", "--pki-dir", pki}, exitOK,
			[]string{"ns=1;s=Oven01.Setpoint", "250.5", `"PCB-4711"`, "["}, nil},
		{"read bad node", []string{"opcua", "read", ep, "Oven01/Sensor4", "--pki-dir", pki}, exitFailed,
			[]string{"BAD ns=1;s=Oven01.Sensor4: BadSensorFailure"}, []string{"1 of 1 node(s) not good"}},
		{"read untrusted", []string{"opcua", "read", ep, "Oven01/Recipe", "--pki-dir", pki, "--security-policy", "Basic256Sha256"}, exitFailed,
			nil, []string{"SHA-1 thumbprint " + thumb, "linegate opcua trust --pki-dir " + pki + " " + thumb}},
		{"trust", []string{"opcua", "trust", "--pki-dir", pki, thumb}, exitOK, []string{"trusted: " + filepath.Join(pki, "trusted", thumb+".der")}, nil},
		{"read secure", []string{"opcua", "read", ep, "Oven01/Recipe", "--pki-dir", pki, "--security-policy", "auto", "--json"}, exitOK,
			[]string{`"value": "PCB-4711"`, `"quality": "good"`}, nil},
		{"subscribe", []string{"opcua", "subscribe", ep, "Oven01/Zone1/Temperature", "--pki-dir", pki, "--interval", "100ms", "--duration", "1s", "--json"}, exitOK,
			[]string{`"node":"Oven01/Zone1/Temperature"`, `"quality":"good"`}, []string{"subscribed (None/None), 1 node(s)"}},
		{"cert", []string{"opcua", "cert", "--pki-dir", pki}, exitOK, []string{"application URI  urn:linegate:", filepath.Join(pki, "own", "cert.pem")}, nil},
		{"trust unknown", []string{"opcua", "trust", "--pki-dir", pki, strings.Repeat("AB", 20)}, exitFailed, nil, []string{"no rejected certificate with thumbprint"}},
		{"no subcommand", []string{"opcua"}, exitUsage, nil, []string{"name a subcommand"}},
		{"bad endpoint", []string{"opcua", "read", "tcp://x:4840", "i=1"}, exitUsage, nil, []string{"want opc.tcp://host:port"}},
		{"bad policy", []string{"opcua", "read", ep, "i=1", "--security-policy", "Basic512"}, exitUsage, nil, []string{"unknown security policy"}},
		{"bad depth", []string{"opcua", "browse", ep, "--depth", "0"}, exitUsage, nil, []string{"--depth 0"}},
		{"read no node", []string{"opcua", "read", ep}, exitUsage, nil, []string{"arg(s)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runCLI(t, tt.args, tt.code, tt.stdout, tt.stderr)
		})
	}
}

func TestOPCUACertCreatesPKI(t *testing.T) {
	pki := filepath.Join(t.TempDir(), "pki")
	code, out, errOut := run(t, "opcua", "cert", "--pki-dir", pki, "--application-uri", "urn:linegate:line1-pc", "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var info struct {
		Created    bool   `json:"created"`
		URI        string `json:"application_uri"`
		Thumbprint string `json:"thumbprint"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if !info.Created || info.URI != "urn:linegate:line1-pc" || !regexp.MustCompile(`^[0-9A-F]{40}$`).MatchString(info.Thumbprint) {
		t.Errorf("cert: %+v", info)
	}
	if fi, err := os.Stat(filepath.Join(pki, "own", "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key: %v %v", fi, err)
	}
	// A second call shows the same certificate.
	_, out2, _ := run(t, "opcua", "cert", "--pki-dir", pki)
	if !strings.Contains(out2, info.Thumbprint) || strings.Contains(out2, "created") {
		t.Errorf("second call:\n%s", out2)
	}
}

// TestOPCUAInteropTrust: linegate refuses node-opcua's certificate, says
// how to trust it, and reads once `linegate opcua trust` did.
func TestOPCUAInteropTrust(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true, User: "op", Password: "secret"})
	pki := t.TempDir()
	pass := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pass, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	read := []string{"opcua", "read", srv.Endpoint, "ns=1;s=Oven.Recipe", "Line1/Oven/Parts",
		"--security-policy", "Basic256Sha256", "--security-mode", "SignAndEncrypt", "--username", "op", "--password-file", pass, "--pki-dir", pki}
	code, _, errOut := run(t, read...)
	m := regexp.MustCompile(`linegate opcua trust --pki-dir \S+ ([0-9A-F]{40})`).FindStringSubmatch(errOut)
	if code != exitFailed || m == nil {
		t.Fatalf("first read: exit %d, stderr %s", code, errOut)
	}
	if code, out, errOut := run(t, "opcua", "trust", "--pki-dir", pki, m[1]); code != exitOK {
		t.Fatalf("trust: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := run(t, read...)
	if code != exitOK || !strings.Contains(out, `"PCB-4711"`) {
		t.Fatalf("read after trust: exit %d\n%s%s", code, out, errOut)
	}
}

// TestNewOPCUANsu: run builds an OPC UA device with an nsu= node id (check
// accepted it and run refused it before) and the clock and login options.
func TestNewOPCUANsu(t *testing.T) {
	text := `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: ` + filepath.Join(t.TempDir(), "buffer.db") + `}
uplink: {brokers: [tcp://127.0.0.1:1884]}
devices:
  - name: oven01
    driver: opcua
    endpoint: opc.tcp://127.0.0.1:4840
    keep_alive: 30s
    max_clock_skew: 2s
    allow_plain_password: true
    auth: {username: op, password: x}
    tags:
      - {name: a, class: process, node: "nsu=urn:linegate:plant;s=Plant.A"}
      - {name: b, class: process, node: "nsu=http://www.siemens.com/simatic-s7-opcua;i=1001"}
`
	cfg, err := configs.Parse("linegate.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	d, err := agent.NewOPCUADriver(cfg.Devices[0], slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("newOPCUA: %v", err)
	}
	d.Close()
}

// TestOPCUAInteropDeadbandUnits: a 0..1 node published with scale 100 and
// deadband 1 (percent points) moves by 0.02 (2 points) every 100 ms. The
// server's filter must be in raw units: handed the configured 1 as is, it
// held back every change of the 0..1 node, and the reading stayed at its
// first value, good, in subscribe mode.
func TestOPCUAInteropDeadbandUnits(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true})
	for _, mode := range []string{"subscribe", "poll"} {
		t.Run(mode, func(t *testing.T) {
			text := `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: ` + filepath.Join(t.TempDir(), "buffer.db") + `}
uplink: {brokers: [tcp://127.0.0.1:1884]}
devices:
  - name: tank
    driver: opcua
    endpoint: ` + srv.Endpoint + `
    mode: ` + mode + `
    poll_interval: 200ms
    tags:
      - {name: level, class: process, node: "ns=1;s=Oven.Level", scale: 100, deadband: 1, unit: "%"}
`
			cfg, err := configs.Parse("linegate.yaml", []byte(text), func(string) (string, bool) { return "", false })
			if err != nil {
				t.Fatal(err)
			}
			d, err := agent.NewOPCUADriver(cfg.Devices[0], slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			var mu sync.Mutex
			seen := map[any]bool{}
			note := func(s drivers.Sample) {
				mu.Lock()
				defer mu.Unlock()
				if s.Quality == drivers.Good {
					seen[s.Value] = true
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			if mode == "subscribe" {
				go func() {
					defer close(done)
					_ = d.Subscribe(ctx, func(cs []drivers.Change) {
						for _, c := range cs {
							note(c.Sample)
						}
					}, func(error) {})
				}()
			} else {
				go func() {
					defer close(done)
					out := make([]drivers.Sample, 1)
					tick := time.NewTicker(200 * time.Millisecond)
					defer tick.Stop()
					for {
						if d.Read(ctx, out) == nil {
							note(out[0])
						}
						select {
						case <-ctx.Done():
							return
						case <-tick.C:
						}
					}
				}()
			}
			defer func() { cancel(); <-done }()
			testkit.WaitFor(t, 20*time.Second, "5 different levels", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(seen) >= 5
			})
		})
	}
}
