package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/testdata/peers"
)

func TestMQTTCheckEmbedded(t *testing.T) {
	broker, err := startBroker("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	dead := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	pw := writeFile(t, "pw", "Sup3r-s3cret\n")

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"round trip", []string{"mqtt", "check", "tcp://" + broker.addr}, exitOK, []string{"connect     ok", "tls         none (plain tcp)", "round trip  ok", "(qos 1 on linegate/_check/linegate-diag-"}, nil},
		{"host:port and password", []string{"mqtt", "check", broker.addr, "--username", "u", "--password-file", pw}, exitOK, []string{"broker      tcp://" + broker.addr}, nil},
		{"json", []string{"mqtt", "check", "tcp://" + broker.addr, "--json"}, exitOK, []string{`"ok": true`, `"round_trip_ms": `}, nil},
		{"unreachable", []string{"mqtt", "check", "tcp://" + dead, "--timeout", "1s"}, exitFailed, []string{"connect     FAIL  connect to tcp://" + dead + ": connection refused\n"}, []string{"connect failed"}},
		{"ssl to a plain port", []string{"mqtt", "check", "ssl://" + broker.addr, "--timeout", "2s"}, exitFailed, []string{"connect to ssl://" + broker.addr + ": is TLS on?"}, []string{"connect failed"}},
		{"bad scheme", []string{"mqtt", "check", "http://" + broker.addr}, exitUsage, nil, []string{"scheme must be tcp, ssl, ws or wss"}},
		{"missing password file", []string{"mqtt", "check", broker.addr, "--password-file", filepath.Join(t.TempDir(), "nope")}, exitUsage, nil, []string{"--password-file"}},
		{"no broker", []string{"mqtt", "check"}, exitUsage, nil, []string{"want BROKER"}},
		{"tail without broker", []string{"mqtt", "tail"}, exitUsage, nil, []string{"--broker URL (or -c FILE) is required"}},
		{"tail unreachable", []string{"mqtt", "tail", "--broker", "tcp://" + dead}, exitFailed, nil, []string{"connection refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut := runCLI(t, tt.args, tt.code, tt.stdout, tt.stderr)
			if strings.Contains(out+errOut, "Sup3r-s3cret") {
				t.Fatal("the password was printed")
			}
			if strings.Contains(out+errOut, "network Error") {
				t.Errorf("paho's wording leaks:\n%s%s", out, errOut)
			}
		})
	}
}

func TestMQTTTail(t *testing.T) {
	broker, err := startBroker("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	status := `{"schema":"linegate/v1","gateway":"line1-pc","state":"online","ts":"2026-11-27T10:15:00Z","version":"dev"}`
	if err := broker.srv.Publish("linegate/plant-a/assembly/line1/_gateway/line1-pc/status", []byte(status), true, 1); err != nil {
		t.Fatal(err)
	}
	out, stop := startCmd(t, "mqtt", "tail", "--broker", "tcp://"+broker.addr, "--count", "3")
	testkit.WaitFor(t, 10*time.Second, "the retained status", func() bool { return strings.Contains(out.String(), "gateway online") })
	data := `{"schema":"linegate/v1","id":"line1-pc:7","gateway":"line1-pc","seq":7,"site":"plant-a","area":"assembly","line":"line1","equipment":"press01","class":"process","ts":"2026-11-27T10:15:02.123Z","historical":false,"readings":[{"tag":"temperature","value":23.5,"unit":"degC","quality":"good","ts":"2026-11-27T10:15:02.101Z"},{"tag":"speed","value":null,"quality":"bad","error":"modbus exception 2 (illegal data address)","ts":"2026-11-27T10:15:02.101Z"}]}`
	for _, p := range []struct{ topic, payload string }{
		{"linegate/plant-a/assembly/line1/press01/process", data},
		{"linegate/other", "not json"},
		{"linegate/after-count", "never shown"},
	} {
		if err := broker.srv.Publish(p.topic, []byte(p.payload), false, 1); err != nil {
			t.Fatal(err)
		}
	}
	testkit.WaitFor(t, 10*time.Second, "three messages", func() bool { return strings.Contains(out.String(), "not json") })
	if code := stop(); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	got := out.String()
	for _, s := range []string{
		"press01   process    seq 7      temperature=23.5 degC  speed=BAD(modbus exception 2 (illegal data address))",
		"linegate/other not json",
	} {
		if !strings.Contains(got, s) {
			t.Errorf("output lacks %q:\n%s", s, got)
		}
	}
	if strings.Contains(got, "never shown") {
		t.Errorf("printed past --count:\n%s", got)
	}
}

// TestMQTTCheckMosquitto checks against a real Mosquitto: plain, TLS with
// the CA, TLS without it (refused), --insecure, and a password listener.
func TestMQTTCheckMosquitto(t *testing.T) {
	peers.Interop(t)
	dir := t.TempDir()
	ca, caKey := writeCA(t, dir)
	writeServerCert(t, dir, ca, caKey)
	tlsPort, pwPort := testkit.FreePort(t), testkit.FreePort(t)
	pwFile := filepath.Join(dir, "passwd")
	if out, err := exec.Command("mosquitto_passwd", "-c", "-b", pwFile, "line1", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	m := peers.StartMosquitto(t, peers.MosquittoOptions{
		GlobalConfig: "per_listener_settings true",
		ExtraConfig: fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
cafile %s
certfile %s
keyfile %s
listener %d 127.0.0.1
allow_anonymous false
password_file %s`, tlsPort, filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"), pwPort, pwFile),
	})
	for _, p := range []int{tlsPort, pwPort} {
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		testkit.WaitFor(t, 10*time.Second, "listener "+addr, func() bool {
			c, err := net.Dial("tcp", addr)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
	good := writeFile(t, "good", "s3cret\n")
	bad := writeFile(t, "bad", "wrong\n")
	tlsURL := fmt.Sprintf("ssl://127.0.0.1:%d", tlsPort)
	pwURL := fmt.Sprintf("tcp://127.0.0.1:%d", pwPort)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
	}{
		{"plain", []string{"mqtt", "check", m.URL}, exitOK, []string{"round trip  ok"}},
		{"tls", []string{"mqtt", "check", tlsURL, "--ca-file", filepath.Join(dir, "ca.pem")}, exitOK, []string{"tls         TLS 1.3, TLS_", "certificate verified", "peer        CN=linegate-test-broker (issuer CN=linegate-test-ca), expires ", "round trip  ok"}},
		{"tls unknown ca", []string{"mqtt", "check", tlsURL}, exitFailed, []string{"connect     FAIL", "certificate"}},
		{"tls insecure", []string{"mqtt", "check", tlsURL, "--insecure"}, exitOK, []string{"NOT verified (--insecure)"}},
		{"password", []string{"mqtt", "check", pwURL, "--username", "line1", "--password-file", good}, exitOK, []string{"round trip  ok"}},
		{"wrong password", []string{"mqtt", "check", pwURL, "--username", "line1", "--password-file", bad}, exitFailed, []string{"connect     FAIL", "not Authorized"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := run(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s\nbroker log:\n%s", code, tt.code, out, errOut, m.Log())
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
		})
	}
	// The JSON names the TLS details too.
	code, out, _ := run(t, "mqtt", "check", tlsURL, "--ca-file", filepath.Join(dir, "ca.pem"), "--json")
	var doc mqttCheckDoc
	if code != exitOK || json.Unmarshal([]byte(out), &doc) != nil || doc.TLS == nil || doc.TLS.Version != "TLS 1.3" || !doc.TLS.Verified {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func writeCA(t *testing.T, dir string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "linegate-test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", der)
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

func writeServerCert(t *testing.T, dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "linegate-test-broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "server.pem"), "CERTIFICATE", der)
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "server.key"), "EC PRIVATE KEY", kb)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
