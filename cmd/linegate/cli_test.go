package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linegate/linegate/configs"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = execute(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckExitCodes(t *testing.T) {
	demo, err := configs.Example("demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("DEMO_MODBUS", "127.0.0.1:5020")
	t.Setenv("DEMO_OPCUA", "127.0.0.1:4840")
	t.Setenv("DEMO_BROKER", "127.0.0.1:18830")
	t.Setenv("DEMO_BUFFER", filepath.Join(t.TempDir(), "b.db"))
	good := writeFile(t, "demo.yaml", string(demo))
	// run cannot create a buffer below a file
	notAFolder := writeFile(t, "nofolder.yaml", strings.Replace(string(demo), "path: ${DEMO_BUFFER}", "path: "+filepath.Join(good, "b.db"), 1))
	broken := writeFile(t, "broken.yaml", strings.Replace(string(demo), "type: float32, unit: degC, deadband: 0.2}", "type: float, unit: degC, deadband: 0.2}", 1))

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"valid demo config", []string{"check", "-c", good}, exitOK,
			[]string{"valid", "linegate/demo-plant/pressing/line1/<equipment>/<class>", "device press01", "plan: 4 read(s) per cycle", "device oven01: opcua opc.tcp://127.0.0.1:4840 None/None, mode subscribe", "Objects/Oven01/Zone2/Temperature", "3 device(s), 24 tag(s), 6 Modbus read(s) per cycle"}, nil},
		{"broken config names the line", []string{"check", "-c", broken}, exitUsage,
			nil, []string{`broken.yaml:29: device press01, tag temperature: unknown type "float"`}},
		{"missing file", []string{"check", "-c", filepath.Join(t.TempDir(), "nope.yaml")}, exitUsage, nil, []string{"no such file"}},
		{"no config flag", []string{"check"}, exitUsage, nil, []string{"-c/--config FILE is required"}},
		{"unknown flag", []string{"check", "--bogus"}, exitUsage, nil, []string{"unknown flag"}},
		{"buffer folder is a file", []string{"check", "-c", notAFolder}, exitUsage, nil, []string{"buffer.path " + filepath.Join(good, "b.db") + ": " + good + " is a file, not a folder"}},
		{"unknown command", []string{"frobnicate"}, exitUsage, nil, []string{"unknown command"}},
		{"version", []string{"version"}, exitOK, []string{"linegate dev"}, nil},
		{"--version", []string{"--version"}, exitOK, []string{"linegate dev (commit"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runCLI(t, tt.args, tt.code, tt.stdout, tt.stderr)
		})
	}
}

func TestCheckNeverPrintsSecrets(t *testing.T) {
	cfg := writeFile(t, "s.yaml", `gateway: {id: g, site: s, area: a, line: l}
uplink: {brokers: [tcp://127.0.0.1:1884], username: u, password: "${SECRET_PW}"}
devices:
  - {name: d, driver: modbus, address: tcp://127.0.0.1:502, tags: [{name: t, class: process, register: holding, address: 0, type: int16}]}
`)
	t.Setenv("SECRET_PW", "Sup3r-s3cret")
	code, out, errOut := run(t, "check", "-c", cfg)
	if code != exitOK || strings.Contains(out+errOut, "Sup3r-s3cret") {
		t.Fatalf("exit %d; secret in output:\n%s%s", code, out, errOut)
	}
}

// runCLI runs linegate with args and checks the exit code and that stdout
// and stderr hold every string listed; it returns both for further checks.
func runCLI(t *testing.T, args []string, code int, stdout, stderr []string) (out, errOut string) {
	t.Helper()
	got, out, errOut := run(t, args...)
	if got != code {
		t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", got, code, out, errOut)
	}
	for _, s := range stdout {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %q:\n%s", s, out)
		}
	}
	for _, s := range stderr {
		if !strings.Contains(errOut, s) {
			t.Errorf("stderr lacks %q:\n%s", s, errOut)
		}
	}
	return out, errOut
}

// TestShippedExampleChecks: the example a newcomer copies passes check as
// shipped, without environment variables set (it once failed with
// "OPCUA_PASSWORD is not set").
func TestShippedExampleChecks(t *testing.T) {
	for _, name := range []string{"OPCUA_PASSWORD", "MQTT_PASSWORD"} {
		if v, ok := os.LookupEnv(name); ok {
			os.Unsetenv(name)
			t.Cleanup(func() { os.Setenv(name, v) })
		}
	}
	// The example's buffer folder is a line PC's /var/lib/linegate; a user
	// other than root (or the service user) cannot create it, and check
	// says so.
	if os.Geteuid() != 0 && configs.CheckBufferPath("/var/lib/linegate/buffer.db") != nil {
		t.Skip("this user cannot create /var/lib/linegate, the example's buffer folder (check reports buffer.path, as it should)")
	}
	runCLI(t, []string{"check", "-c", filepath.Join("..", "..", "configs", "linegate.yaml")}, exitOK,
		[]string{"config ../../configs/linegate.yaml: valid", "2 device(s)"}, nil)
}
