package configs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestHTTPAccess(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "http.token")
	if err := os.WriteFile(tokenFile, []byte("0123456789abcdef-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		http      string
		wantErr   string // "" = valid
		wantToken string
		wantWarn  string
	}{
		{"default loopback", "", "", "", ""},
		{"loopback v4", "http: {listen: 127.0.0.1:9870}", "", "", ""},
		{"loopback v6", "http: {listen: \"[::1]:9870\"}", "", "", ""},
		{"localhost", "http: {listen: localhost:9870}", "", "", ""},
		{"disabled", "http: {listen: \"\"}", "", "", ""},
		{"all interfaces without token", "http: {listen: 0.0.0.0:9870}", `linegate.yaml:4: http: listen "0.0.0.0:9870" is not a loopback address: set token or token_file`, "", ""},
		{"empty host without token", "http: {listen: \":9870\"}", `is not a loopback address`, "", ""},
		{"plant address without token", "http: {listen: 10.0.0.7:9870}", `is not a loopback address`, "", ""},
		{"host name without token", "http: {listen: linepc:9870}", `is not a loopback address`, "", ""},
		{"all interfaces with token", "http: {listen: 0.0.0.0:9870, token: 0123456789abcdef}", "", "0123456789abcdef", ""},
		{"token from env", "http: {listen: 0.0.0.0:9870, token: \"${HTTP_TOKEN}\"}", "", "env-token-0123456789", ""},
		{"token file", "http: {listen: 0.0.0.0:9870, token_file: http.token}", "", "0123456789abcdef-from-file", ""},
		{"token and file", "http: {listen: 0.0.0.0:9870, token: x, token_file: http.token}", `token and token_file are exclusive`, "", ""},
		{"missing token file", "http: {listen: 0.0.0.0:9870, token_file: nope.token}", `token_file: open`, "", ""},
		{"short token", "http: {listen: 0.0.0.0:9870, token: Xq7z9}", "", "Xq7z9", "the token is shorter than 16 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := base
			if tt.http != "" {
				text = strings.Replace(base, "devices:", tt.http+"\ndevices:", 1)
			}
			cfg, err := Parse(filepath.Join(dir, "linegate.yaml"), []byte(text), env(map[string]string{"HTTP_TOKEN": "env-token-0123456789"}))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.HTTP.Token.Reveal(); got != tt.wantToken {
				t.Errorf("token = %q, want %q", got, tt.wantToken)
			}
			warns := strings.Join(cfg.Warnings, "\n")
			if tt.wantWarn == "" && warns != "" || !strings.Contains(warns, tt.wantWarn) {
				t.Errorf("warnings %q, want %q", warns, tt.wantWarn)
			}
			if tt.wantToken != "" && strings.Contains(warns, tt.wantToken) {
				t.Errorf("a warning shows the token: %q", warns)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "127.1.2.3:1": true, "[::1]:1": true, "localhost:1": true, "LOCALHOST:1": true,
		"0.0.0.0:1": false, ":1": false, "[::]:1": false, "10.0.0.7:1": false, "example.com:1": false, "garbage": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

// writeCert writes a self-signed PEM certificate valid from nb to na.
func writeCert(t *testing.T, path string, nb, na time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gw"}, NotBefore: nb, NotAfter: na}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSecretFileWarnings: a password or key file every user can read, and
// a client certificate that expired or soon will, are warnings naming the
// file line; a private file draws none, and no warning shows a secret.
func TestSecretFileWarnings(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	const password = "mqtt-pass-Zq8#"
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask may have taken bits away
			t.Fatal(err)
		}
		return p
	}
	write("open.pass", password+"\n", 0o644)
	write("private.pass", password+"\n", 0o600)
	write("group.pass", password+"\n", 0o640)
	write("open.key", "key", 0o604)
	write("private.key", "key", 0o600)
	now := time.Now()
	writeCert(t, filepath.Join(dir, "expired.pem"), now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	writeCert(t, filepath.Join(dir, "soon.pem"), now.Add(-time.Hour), now.Add(10*24*time.Hour))
	writeCert(t, filepath.Join(dir, "good.pem"), now.Add(-time.Hour), now.Add(365*24*time.Hour))

	tests := []struct {
		name   string
		uplink string
		want   []string // substrings of the warnings; none = no warning
	}{
		{"open password file", "password_file: open.pass", []string{"linegate.yaml:5: uplink: password_file " + filepath.Join(dir, "open.pass") + " is readable by every user of this machine (mode 0644)"}},
		{"private password file", "password_file: private.pass", nil},
		{"group password file", "password_file: group.pass", nil},
		{"open key file", "tls: {cert_file: good.pem, key_file: open.key}", []string{"uplink: tls key_file", "(mode 0604)"}},
		{"private key file", "tls: {cert_file: good.pem, key_file: private.key}", nil},
		{"expired client cert", "tls: {cert_file: expired.pem, key_file: private.key}", []string{"tls cert_file " + filepath.Join(dir, "expired.pem") + " expired on"}},
		{"client cert expiring", "tls: {cert_file: soon.pem, key_file: private.key}", []string{"soon.pem expires on"}},
		{"missing cert", "tls: {cert_file: none.pem, key_file: private.key}", []string{"ERROR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(base, "uplink: {brokers: [tcp://127.0.0.1:1884]}", "uplink:\n  brokers: [ssl://127.0.0.1:8884]\n  "+tt.uplink, 1)
			cfg, err := Parse(filepath.Join(dir, "linegate.yaml"), []byte(text), env(nil))
			if len(tt.want) == 1 && tt.want[0] == "ERROR" {
				if err == nil || !strings.Contains(err.Error(), "tls cert_file: open") {
					t.Fatalf("err = %v, want the missing cert_file named", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			warns := strings.Join(cfg.Warnings, "\n")
			if len(tt.want) == 0 && warns != "" {
				t.Errorf("unexpected warnings:\n%s", warns)
			}
			for _, w := range tt.want {
				if !strings.Contains(warns, w) {
					t.Errorf("warnings:\n%s\nwant %q", warns, w)
				}
			}
			if strings.Contains(warns, password) {
				t.Errorf("a warning shows the password: %s", warns)
			}
		})
	}
}

// TestOPCUASecretFileWarning: an OPC UA password file is checked too.
func TestOPCUASecretFileWarning(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix permission bits")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "opcua.pass")
	if err := os.WriteFile(p, []byte("op-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(opcuaBase, "    tags:\n", "    auth: {username: op, password_file: opcua.pass}\n    tags:\n", 1)
	cfg, err := Parse(filepath.Join(dir, "linegate.yaml"), []byte(text), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(cfg.Warnings, "\n"); !strings.Contains(w, "auth password_file "+p+" is readable by every user") {
		t.Errorf("warnings %q", w)
	}
}
