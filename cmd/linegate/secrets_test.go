package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"
)

// The secrets of TestSecretsNeverShown: distinct, so that a leak names its
// source.
const (
	secretMQTTFile  = "mqtt-FILE-pw-7Hq2"
	secretMQTTEnv   = "mqtt-ENV-pw-9Kx4"
	secretMQTTURL   = "mqtt-URL-pw-3Zt8"
	secretOPCUAFile = "opcua-FILE-pw-5Rw1"
	secretOPCUAEnv  = "opcua-ENV-pw-2Mv6"
	secretToken     = "http-TOKEN-0123456789-Yp4"
)

var allSecrets = []string{secretMQTTFile, secretMQTTEnv, secretMQTTURL, secretOPCUAFile, secretOPCUAEnv, secretToken}

// secretsConfig has a Modbus device that answers, an OPC UA device with a
// user login whose server is not there (so its errors are logged), and the
// local endpoint on loopback with a token.
const secretsConfig = `gateway: {id: sec-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: %[1]s, commit_interval: 20ms}
uplink:
  brokers: [%[2]s]
  username: gw
%[3]s
http: {listen: "%[4]s", token: "${HTTP_TOKEN}"}
devices:
  - name: press01
    driver: modbus
    address: tcp://%[5]s
    poll_interval: 100ms
    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}
  - name: oven01
    driver: opcua
    endpoint: opc.tcp://127.0.0.1:%[6]d
    poll_interval: 100ms
    timeout: 200ms
    mode: poll
    auth: {username: op, %[7]s}
    tags:
      - {name: zone1, class: process, node: "ns=2;s=Oven.Zone1", unit: degC}
`

// TestSecretsNeverShown runs check, check --connect, run (debug log),
// /status, /metrics and the status command with MQTT and OPC UA passwords
// from a file, from ${ENV} and from the broker URL, and an http token, and
// looks for every secret in everything they print. A world-readable
// password file gets a warning that does not show it either.
func TestSecretsNeverShown(t *testing.T) {
	line := frozenLine(t, 1)
	broker, err := startBroker("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	dir := t.TempDir()
	mqttPass := filepath.Join(dir, "mqtt.pass")
	opcuaPass := filepath.Join(dir, "opcua.pass")
	for path, s := range map[string]string{mqttPass: secretMQTTFile, opcuaPass: secretOPCUAFile} {
		if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(mqttPass, 0o644); err != nil { // world-readable: must warn
		t.Fatal(err)
	}
	t.Setenv("MQTT_PASSWORD", secretMQTTEnv)
	t.Setenv("OPCUA_PASSWORD", secretOPCUAEnv)
	t.Setenv("HTTP_TOKEN", secretToken)

	tests := []struct {
		name, brokerURL, uplinkSecret, opcuaSecret string
		wantWarning                                string
	}{
		{"password files", "tcp://" + broker.addr, "  password_file: " + mqttPass, "password_file: " + opcuaPass, "mqtt.pass is readable by every user"},
		{"env", "tcp://" + broker.addr, `  password: "${MQTT_PASSWORD}"`, `password: "${OPCUA_PASSWORD}"`, ""},
		{"broker url", "tcp://gw:" + secretMQTTURL + "@" + broker.addr, "", `password: "${OPCUA_PASSWORD}"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			httpAddr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
			cfg := writeFile(t, "secrets.yaml", fmt.Sprintf(secretsConfig, filepath.Join(t.TempDir(), "buffer.db"),
				tt.brokerURL, tt.uplinkSecret, httpAddr, line.Addr(), testkit.FreePort(t), tt.opcuaSecret))
			var seen strings.Builder // everything printed or served
			record := func(what, s string) { fmt.Fprintf(&seen, "--- %s\n%s\n", what, s) }

			code, out, errOut := run(t, "check", "-c", cfg)
			record("check", out+errOut)
			if code != exitOK {
				t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
			}
			if tt.wantWarning != "" && !strings.Contains(out, tt.wantWarning) {
				t.Errorf("check does not warn %q:\n%s", tt.wantWarning, out)
			}
			_, out, errOut = run(t, "check", "-c", cfg, "--connect", "--log-level", "debug")
			record("check --connect", out+errOut)

			logs := startRunDebug(t, cfg)
			testkit.WaitFor(t, 20*time.Second, "the agent publishing", func() bool {
				code, _, _ := run(t, "status", "-c", cfg)
				return code == exitOK || strings.Contains(logs.String(), "oven01") && bodyOf(t, httpAddr, "/status", secretToken, nil) != ""
			})
			testkit.WaitFor(t, 20*time.Second, "the OPC UA device's error in /status", func() bool {
				return strings.Contains(bodyOf(t, httpAddr, "/status", secretToken, nil), `"name": "oven01"`) &&
					strings.Contains(bodyOf(t, httpAddr, "/status", secretToken, nil), "last_error")
			})
			record("/status", bodyOf(t, httpAddr, "/status", secretToken, nil))
			record("/metrics", bodyOf(t, httpAddr, "/metrics", secretToken, nil))
			var status int
			record("/status without token", bodyOf(t, httpAddr, "/status", "", &status))
			if status != http.StatusUnauthorized {
				t.Errorf("/status without the token: %d, want 401", status)
			}
			record("/status with a wrong token", bodyOf(t, httpAddr, "/status", "wrong", &status))
			if status != http.StatusUnauthorized {
				t.Errorf("/status with a wrong token: %d, want 401", status)
			}
			if got := bodyOf(t, httpAddr, "/healthz", "", &status); status != http.StatusOK || got != "ok\n" {
				t.Errorf("/healthz without a token: %d %q", status, got)
			}
			_, out, errOut = run(t, "status", "-c", cfg)
			record("status", out+errOut)
			_, out, errOut = run(t, "status", "-c", cfg, "--json")
			record("status --json", out+errOut)
			record("run log", logs.String())
			if tt.wantWarning != "" && !strings.Contains(logs.String(), tt.wantWarning) {
				t.Errorf("run does not warn %q:\n%s", tt.wantWarning, logs.String())
			}
			for _, s := range allSecrets {
				if i := strings.Index(seen.String(), s); i >= 0 {
					t.Errorf("secret %q shown:\n%s", s, context500(seen.String(), i))
				}
			}
		})
	}
}

// TestInvalidConfigHidesURLPassword: a config error about a broker URL
// names the URL without its password.
func TestInvalidConfigHidesURLPassword(t *testing.T) {
	for _, b := range []string{"foo://gw:" + secretMQTTURL + "@h:1", "tcp://gw:" + secretMQTTURL + "@", "tcp://gw:" + secretMQTTURL + "@h:1/%zz"} {
		cfg := writeFile(t, "bad.yaml", `gateway: {id: g, site: s, area: a, line: l}
uplink: {brokers: ["`+b+`"]}
devices:
  - {name: d, driver: modbus, address: tcp://127.0.0.1:502, tags: [{name: t, class: process, register: holding, address: 0, type: int16}]}
`)
		code, out, errOut := run(t, "check", "-c", cfg)
		if code != exitUsage || !strings.Contains(errOut, "bad.yaml:2: uplink: broker") || strings.Contains(out+errOut, secretMQTTURL) {
			t.Errorf("broker %s: exit %d\n%s%s", b, code, out, errOut)
		}
	}
}

// TestSecretsNotInGoroutineDump sends SIGQUIT to the real binary: the Go
// runtime then dumps every goroutine's stack, as an unrecovered panic does.
// Stack traces print argument words in hex, never string contents, so no
// password may appear.
func TestSecretsNotInGoroutineDump(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := linegateBinary(t)
	broker, err := startBroker("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	line := frozenLine(t, 1)
	dir := t.TempDir()
	opcuaPass := filepath.Join(dir, "opcua.pass")
	if err := os.WriteFile(opcuaPass, []byte(secretOPCUAFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	cfg := writeFile(t, "secrets.yaml", fmt.Sprintf(secretsConfig, filepath.Join(dir, "buffer.db"),
		"tcp://"+broker.addr, `  password: "${MQTT_PASSWORD}"`, httpAddr, line.Addr(), testkit.FreePort(t), "password_file: "+opcuaPass))
	var stderr bytes.Buffer
	var mu sync.Mutex
	q := exec.Command(bin, "run", "-c", cfg, "--log-level", "debug")
	q.Env = append(os.Environ(), "MQTT_PASSWORD="+secretMQTTEnv, "HTTP_TOKEN="+secretToken, "GOTRACEBACK=all")
	q.Stderr = &lockedWriter{w: &stderr, mu: &mu}
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- q.Wait() }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			q.Process.Kill()
			<-done
		}
	})
	testkit.WaitFor(t, 20*time.Second, "the agent serving", func() bool { return bodyOf(t, httpAddr, "/healthz", "", nil) == "ok\n" })
	if err := q.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		done <- nil // for the cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("no exit after SIGQUIT")
	}
	mu.Lock()
	dump := stderr.String()
	mu.Unlock()
	if !strings.Contains(dump, "goroutine ") {
		t.Fatalf("no goroutine dump:\n%s", dump)
	}
	for _, s := range allSecrets {
		if i := strings.Index(dump, s); i >= 0 {
			t.Errorf("secret %q in the dump:\n%s", s, context500(dump, i))
		}
	}
}

// startRunDebug runs `linegate run` in-process with debug logs, until the
// test ends.
func startRunDebug(t *testing.T, path string) *syncBuffer {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		execute(ctx, []string{"run", "-c", path, "--log-level", "debug"}, io.Discard, logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-finished:
		case <-time.After(15 * time.Second):
			t.Error("run did not stop")
		}
	})
	return logs
}

// bodyOf GETs a path of the agent, with a bearer token unless "", and
// returns the body ("" if it does not answer); status gets the code.
func bodyOf(t *testing.T, addr, path, token string, status *int) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if status != nil {
		*status = resp.StatusCode
	}
	return string(b)
}

func context500(s string, i int) string {
	return s[max(0, i-250):min(len(s), i+250)]
}
