package uplink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/testdata/peers"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

var serial struct {
	mu sync.Mutex
	n  int64
}

// issue signs a leaf certificate valid from nb to na; a server certificate
// names 127.0.0.1 and localhost (Mosquitto's clients check them).
func (ca *testCA) issue(t *testing.T, cn string, server bool, nb, na time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial.mu.Lock()
	serial.n++
	sn := serial.n + 1
	serial.mu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(sn), Subject: pkix.Name{CommonName: cn},
		NotBefore: nb, NotAfter: na, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// writePEM writes a certificate (and its key, when keyPath is set) as PEM
// files readable by the owner only.
func writePEM(t *testing.T, certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) {
	t.Helper()
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if keyPath == "" {
		return
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// secureBroker is a Mosquitto with three listeners in one process
// (per_listener_settings true): the plain anonymous one (the MES's view,
// for the test's observer), TLS + password_file, and mTLS with the client
// certificate's CN as user name; both secure ones share one ACL file.
type secureBroker struct {
	m              *peers.Mosquitto
	pwPort, mtPort int
	ca             *testCA
}

// The ACL grants each gateway user its own line, status topics included;
// "line2-gw" has a valid login but the ACL of another line.
const testACL = `user line1-gw
topic readwrite linegate/plant-a/assembly/line1/#

user line1-pc
topic readwrite linegate/plant-a/assembly/line1/#

user line2-gw
topic readwrite linegate/plant-a/assembly/line2/#
`

func startSecureBroker(t *testing.T) *secureBroker {
	t.Helper()
	dir := t.TempDir()
	ca := newTestCA(t, "linegate test CA")
	srv := ca.issue(t, "localhost", true, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	p := func(name string) string { return filepath.Join(dir, name) }
	writePEM(t, p("ca.pem"), "", ca.cert.Raw, nil)
	writePEM(t, p("server.pem"), p("server.key"), srv.Certificate[0], srv.PrivateKey.(*ecdsa.PrivateKey))
	for _, u := range [][2]string{{"line1-gw", "right-pass"}, {"line2-gw", "line2-pass"}} {
		args := []string{"-b", p("passwd"), u[0], u[1]}
		if u[0] == "line1-gw" {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	if err := os.WriteFile(p("acl"), []byte(testACL), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsFiles := fmt.Sprintf("cafile %s\ncertfile %s\nkeyfile %s\n", p("ca.pem"), p("server.pem"), p("server.key"))
	b := &secureBroker{pwPort: testkit.FreePort(t), mtPort: testkit.FreePort(t), ca: ca}
	b.m = peers.StartMosquitto(t, peers.MosquittoOptions{
		GlobalConfig: "per_listener_settings true",
		ExtraConfig: fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nacl_file %s\n%s\n"+
			"listener %d 127.0.0.1\nallow_anonymous false\nrequire_certificate true\nuse_identity_as_username true\nacl_file %s\n%s",
			b.pwPort, p("passwd"), p("acl"), tlsFiles, b.mtPort, p("acl"), tlsFiles),
	})
	for _, port := range []int{b.pwPort, b.mtPort} {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		testkit.WaitFor(t, 10*time.Second, "listener "+addr, func() bool {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	}
	return b
}

// observer is the MES: an anonymous subscriber on the plain listener that
// records the seq of every data message of line1.
type observer struct {
	mu   sync.Mutex
	seqs []uint64
}

func observe(t *testing.T, b *secureBroker) *observer {
	t.Helper()
	o := &observer{}
	opts := mqtt.NewClientOptions().AddBroker(b.m.URL).SetClientID(fmt.Sprintf("mes-%d", time.Now().UnixNano())).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(long) || tok.Error() != nil {
		t.Fatalf("observer connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	tok := c.Subscribe(dataFilter, 1, func(_ mqtt.Client, m mqtt.Message) {
		d := decodeData(t, m.Payload())
		o.mu.Lock()
		o.seqs = append(o.seqs, d.Seq)
		o.mu.Unlock()
	})
	if !tok.WaitTimeout(long) || tok.Error() != nil {
		t.Fatalf("observer subscribe: %v", tok.Error())
	}
	return o
}

func (o *observer) got() []uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.seqs)
}

// filledQueue is a real buffer file holding n committed messages.
func filledQueue(t *testing.T, n int) *buffer.Queue {
	t.Helper()
	q, err := buffer.Open(buffer.Options{Path: filepath.Join(t.TempDir(), "buffer.db"), MaxSize: 16 << 20, CommitInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	now := time.Now().UTC()
	for i := range n {
		if _, err := q.Append(buffer.Message{Created: now, Equipment: "press01", Class: "process",
			Readings: []buffer.Reading{{Tag: "temperature", Value: float64(i), Unit: "degC", TS: now}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
	return q
}

// TestTLSInteropMosquitto runs the uplink against a real Mosquitto with
// TLS, password_file, mTLS and an ACL. Each misconfiguration must give a
// clear error (in Status().LastError and in the log) and lose nothing: the
// messages stay in a real buffer file until a correct config delivers them
// all to the MES.
func TestTLSInteropMosquitto(t *testing.T) {
	peers.Interop(t)
	b := startSecureBroker(t)
	now := time.Now()
	client := b.ca.issue(t, "line1-pc", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	expired := b.ca.issue(t, "line1-pc", false, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	otherCA := newTestCA(t, "someone else's CA")
	pwURL := fmt.Sprintf("ssl://127.0.0.1:%d", b.pwPort)
	mtURL := fmt.Sprintf("ssl://localhost:%d", b.mtPort) // server name checked against DNS:localhost

	withPassword := func(user, pass string, roots *x509.CertPool) func(*Config) {
		return func(c *Config) {
			c.Brokers = []string{pwURL}
			c.Username, c.Password = user, pass
			c.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		}
	}
	withCert := func(cert *tls.Certificate) func(*Config) {
		return func(c *Config) {
			c.Brokers = []string{mtURL}
			c.TLS = &tls.Config{RootCAs: b.ca.pool, MinVersion: tls.VersionTLS12}
			if cert != nil {
				c.TLS.Certificates = []tls.Certificate{*cert}
			}
		}
	}
	good := withPassword("line1-gw", "right-pass", b.ca.pool)

	tests := []struct {
		name    string
		bad     func(*Config) // nil: the good config delivers at once
		wantErr []string      // in LastError and the log, lower case, any of
		fix     func(*Config)
	}{
		{"ca and password", nil, nil, good},
		{"client certificate", nil, nil, withCert(&client)},
		{"wrong ca", withPassword("line1-gw", "right-pass", otherCA.pool), []string{"certificate signed by unknown authority"}, good},
		{"system roots only", withPassword("line1-gw", "right-pass", nil), []string{"certificate signed by unknown authority"}, good},
		{"server name mismatch", func(c *Config) { good(c); c.TLS.ServerName = "mes-broker.example" }, []string{"not mes-broker.example"}, good},
		{"wrong password", withPassword("line1-gw", "wrong-pass", b.ca.pool), []string{"refused the login of user"}, good},
		{"expired client certificate", withCert(&expired), []string{"expired on 20"}, withCert(&client)},
		{"no client certificate", withCert(nil), []string{"if it requires a client certificate, set tls cert_file and key_file", "tls: certificate required"}, withCert(&client)},
		{"topic outside the acl", withPassword("line2-gw", "line2-pass", b.ca.pool), []string{"did not deliver it: its acl probably denies"}, good},
	}
	const n = 20
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := filledQueue(t, n)
			mes := observe(t, b)
			if tt.bad != nil {
				var logs syncBuffer
				cfg := testConfig(pwURL)
				cfg.ConnectTimeout = 2 * time.Second // bounds the ACL case's wait for the echo
				cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				tt.bad(&cfg)
				r := startUplink(t, cfg, q)
				testkit.WaitFor(t, long, "a connect error", func() bool { return r.u.Status().LastError != "" })
				r.stop(t)
				st := r.u.Status()
				t.Logf("LastError: %s", st.LastError)
				if !containsAny(strings.ToLower(st.LastError), tt.wantErr) {
					t.Errorf("LastError %q, want one of %q", st.LastError, tt.wantErr)
				}
				if !containsAny(strings.ToLower(logs.String()), tt.wantErr) {
					t.Errorf("log does not say why:\n%s", logs.String())
				}
				if got := q.Stats().Messages; got != n {
					t.Fatalf("after the failed config the buffer holds %d messages, want %d", got, n)
				}
				if got := mes.got(); len(got) != 0 {
					t.Errorf("the MES got %v from a failed config", got)
				}
				if strings.Contains(logs.String(), "pass") && strings.Contains(logs.String(), cfg.Password) && cfg.Password != "" {
					t.Errorf("the log shows the password:\n%s", logs.String())
				}
			}
			cfg := testConfig(pwURL)
			tt.fix(&cfg)
			r := startUplink(t, cfg, q)
			testkit.WaitFor(t, long, "buffer delivered", func() bool { return q.Stats().Messages == 0 })
			testkit.WaitFor(t, long, "the MES got every message", func() bool { return len(mes.got()) >= n })
			r.stop(t)
			got := mes.got()
			for i := range n {
				if !slices.Contains(got, uint64(i+1)) {
					t.Fatalf("the MES never got seq %d (got %v)\nbroker log:\n%s", i+1, got, b.m.Log())
				}
			}
		})
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
