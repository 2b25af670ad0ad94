package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const opcuaBase = `gateway: {id: gw1, site: s, area: a, line: l}
buffer: {path: /var/lib/lg/buffer.db}
uplink: {brokers: [tcp://127.0.0.1:1884]}
devices:
  - name: oven01
    driver: opcua
    endpoint: opc.tcp://127.0.0.1:4840
    tags:
      - {name: temp, class: process, node: "ns=2;s=Oven.Temp"}
`

func TestOPCUADefaults(t *testing.T) {
	text := strings.Replace(opcuaBase, "    tags:\n", "    sampling_interval: 200ms\n    queue_size: 5\n    tags:\n      - {name: bp, class: process, browse_path: Objects/Line1/2:Oven/Temp}\n", 1)
	cfg, err := Parse("linegate.yaml", []byte(text), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Devices[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"policy", d.SecurityPolicy, "None"},
		{"mode", d.SecurityMode, "None"},
		{"subscribe", d.Mode, "subscribe"},
		{"pki beside the buffer", d.PKIDir, "/var/lib/lg/pki"},
		{"sampling", d.SamplingInterval.D(), 200 * time.Millisecond},
		{"queue", d.QueueSize, 5},
		{"max_clock_skew", d.MaxClockSkew.D(), 5 * time.Second},
		{"keep_alive", d.KeepAlive.D(), time.Duration(0)},
		{"allow_plain_password", d.AllowPlainPassword, false},
		{"browse_path", d.Tags[0].BrowsePath, "Objects/Line1/2:Oven/Temp"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestOPCUAClockAndKeepAlive(t *testing.T) {
	text := strings.Replace(opcuaBase, "    tags:\n", "    keep_alive: 30s\n    max_clock_skew: 2s\n    allow_plain_password: true\n    auth: {username: op, password: x}\n    tags:\n", 1)
	cfg, err := Parse("linegate.yaml", []byte(text), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Devices[0]
	if d.KeepAlive.D() != 30*time.Second || d.MaxClockSkew.D() != 2*time.Second || !d.AllowPlainPassword {
		t.Errorf("keep_alive %v, max_clock_skew %v, allow_plain_password %v", d.KeepAlive, d.MaxClockSkew, d.AllowPlainPassword)
	}
}

func TestOPCUAAuth(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"user.pem", "user.key"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	text := strings.Replace(opcuaBase, "    tags:\n", "    security_policy: auto\n    auth: {cert_file: user.pem, key_file: user.key}\n    tags:\n", 1)
	path := filepath.Join(dir, "linegate.yaml")
	cfg, err := Parse(path, []byte(text), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Devices[0].Auth; a.CertFile != filepath.Join(dir, "user.pem") || a.KeyFile != filepath.Join(dir, "user.key") {
		t.Errorf("auth files not resolved beside the config: %+v", a)
	}
}

func TestOPCUAErrors(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string // applied to opcuaBase
		want    string
	}{
		{"bad endpoint", [2]string{"opc.tcp://127.0.0.1:4840", "tcp://127.0.0.1:4840"}, `linegate.yaml:7: device oven01: endpoint "tcp://127.0.0.1:4840" must be opc.tcp://host:port`},
		{"bad policy", [2]string{"    tags:", "    security_policy: Basic512\n    tags:"}, `unknown security_policy "Basic512"`},
		{"policy mode mismatch", [2]string{"    tags:", "    security_policy: Basic256Sha256\n    security_mode: None\n    tags:"}, `security_policy Basic256Sha256 and security_mode None do not go together`},
		{"bad mode", [2]string{"    tags:", "    mode: push\n    tags:"}, `unknown mode "push"`},
		{"no source", [2]string{`node: "ns=2;s=Oven.Temp"`, `unit: degC`}, `linegate.yaml:9: device oven01, tag temp: node or browse_path is required`},
		{"both sources", [2]string{`node: "ns=2;s=Oven.Temp"`, `node: "ns=2;s=Oven.Temp", browse_path: Objects/Oven/Temp`}, `node and browse_path are exclusive`},
		{"bad node id", [2]string{`node: "ns=2;s=Oven.Temp"`, `node: "Oven.Temp"`}, `node "Oven.Temp" is not a node id`},
		{"empty browse path", [2]string{`node: "ns=2;s=Oven.Temp"`, `browse_path: Objects/`}, `names no node below Objects`},
		{"empty path element", [2]string{`node: "ns=2;s=Oven.Temp"`, `browse_path: Objects/Line1//Temp`}, `has an empty element`},
		{"modbus key", [2]string{"    tags:", "    unit_id: 1\n    tags:"}, `unit_id is a Modbus setting; this device has driver opcua`},
		{"modbus tag key", [2]string{`node: "ns=2;s=Oven.Temp"`, `node: "ns=2;s=Oven.Temp", register: holding`}, `register is a Modbus setting`},
		{"auth empty", [2]string{"    tags:", "    auth: {password: x}\n    tags:"}, `auth: username (or cert_file and key_file) is required`},
		{"auth user and cert", [2]string{"    tags:", "    auth: {username: op, cert_file: /nonexistent.pem, key_file: /nonexistent.key}\n    tags:"}, `username and cert_file are exclusive`},
		{"auth cert without key", [2]string{"    tags:", "    auth: {cert_file: /nonexistent.pem}\n    tags:"}, `cert_file and key_file go together`},
		{"auth cert missing", [2]string{"    tags:", "    auth: {cert_file: /nonexistent.pem, key_file: /nonexistent.key}\n    tags:"}, `auth: cert_file: stat /nonexistent.pem`},
		{"queue size", [2]string{"    tags:", "    queue_size: 20000\n    tags:"}, `queue_size 20000 must be 1..10000`},
		{"sampling in poll mode", [2]string{"    tags:", "    mode: poll\n    sampling_interval: 1s\n    tags:"}, `sampling_interval is for mode subscribe`},
		{"keep_alive in poll mode", [2]string{"    tags:", "    mode: poll\n    keep_alive: 10s\n    tags:"}, `keep_alive is for mode subscribe`},
		{"keep_alive short", [2]string{"    tags:", "    poll_interval: 1s\n    keep_alive: 2s\n    tags:"}, `keep_alive 2s must be at least 3 publishing intervals (poll_interval 1s)`},
		{"keep_alive negative", [2]string{"    tags:", "    keep_alive: -1s\n    tags:"}, `keep_alive -1s must be positive`},
		{"max_clock_skew negative", [2]string{"    tags:", "    max_clock_skew: -5s\n    tags:"}, `max_clock_skew -5s must be positive`},
		{"allow_plain_password anonymous", [2]string{"    tags:", "    allow_plain_password: true\n    tags:"}, `linegate.yaml:8: device oven01: allow_plain_password is for a login with auth.username`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(opcuaBase, tt.replace[0], tt.replace[1], 1)
			if text == opcuaBase {
				t.Fatalf("replacement %q not found", tt.replace[0])
			}
			_, err := Parse("/etc/linegate/linegate.yaml", []byte(text), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, tt.want)
			}
		})
	}
	// OPC UA keys on a Modbus device.
	for _, k := range []string{"sampling_interval: 1s", "queue_size: 2", "keep_alive: 10s", "max_clock_skew: 1s", "allow_plain_password: true"} {
		text := strings.Replace(base, "    driver: modbus", "    driver: modbus\n    "+k, 1)
		if _, err := Parse("linegate.yaml", []byte(text), env(nil)); err == nil || !strings.Contains(err.Error(), "is an OPC UA setting") {
			t.Errorf("%s on modbus: %v", k, err)
		}
	}
	text := strings.Replace(base, "type: float32}", "type: float32, browse_path: A/B}", 1)
	if _, err := Parse("linegate.yaml", []byte(text), env(nil)); err == nil || !strings.Contains(err.Error(), "browse_path is an OPC UA setting") {
		t.Errorf("browse_path on modbus: %v", err)
	}
}
