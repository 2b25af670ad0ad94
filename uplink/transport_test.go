package uplink

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// selfSigned makes a broker certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test broker"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
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
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// wsBroker starts a broker with a websocket listener. mochi's websocket
// listener cannot report the port of ":0", so a free port is picked first.
func wsBroker(t *testing.T) *testBroker {
	t.Helper()
	addr := deadAddr(t)
	b := startBrokerOn(t, listeners.NewWebsocket(listeners.Config{ID: "ws", Address: addr}))
	testkit.WaitFor(t, long, "websocket listener", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return b
}

func TestTransports(t *testing.T) {
	cert, pool := selfSigned(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	tlsBroker := startBrokerOn(t, listeners.NewTCP(listeners.Config{ID: "tls", Address: "127.0.0.1:0", TLSConfig: serverTLS}))
	ws := wsBroker(t)
	tests := []struct {
		name    string
		broker  string
		tls     *tls.Config
		wantErr string // "" = must deliver
	}{
		{"ssl with the broker's CA", "ssl://" + tlsBroker.addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ""},
		{"ssl verifies by default", "ssl://" + tlsBroker.addr, nil, "certificate"},
		{"ws", "ws://" + ws.addr + "/", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newMemSource()
			src.addN(10)
			cfg := testConfig(tt.broker)
			cfg.TLS = tt.tls
			r := startUplink(t, cfg, src)
			if tt.wantErr != "" {
				testkit.WaitFor(t, long, "connect error", func() bool { return r.u.Status().LastError != "" })
				if st := r.u.Status(); st.Connected || !strings.Contains(st.LastError, tt.wantErr) {
					t.Errorf("status %+v, want an error about %q", st, tt.wantErr)
				}
				return
			}
			waitDrained(t, src)
		})
	}
}
