package opcua

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/testdata/peers"
)

// Interop tests against a node-opcua server (testdata/peers): they skip
// unless LINEGATE_INTEROP=1, and then a missing node or node_modules fails.

var nodeTags = []Tag{
	{Name: "temp", Node: "ns=1;s=Oven.Temperature"},
	{Name: "parts", BrowsePath: "Objects/Line1/Oven/Parts"},
	{Name: "recipe", BrowsePath: "Line1/Oven/Recipe"},
	{Name: "heater", Node: "ns=1;s=Oven.Heater"},
	{Name: "sensor4", Node: "ns=1;s=Oven.Sensor4"},
}

func checkNodeSamples(t *testing.T, get func(int) drivers.Sample) {
	t.Helper()
	if s := get(0); s.Quality != drivers.Good || !isType[float64](s.Value) || s.TS.IsZero() {
		t.Errorf("temp: %#v %v %v %v", s.Value, s.Quality, s.Err, s.TS)
	}
	if s := get(1); s.Quality != drivers.Good || !isType[uint64](s.Value) {
		t.Errorf("parts: %#v %v %v", s.Value, s.Quality, s.Err)
	}
	if s := get(2); s.Value != "PCB-4711" {
		t.Errorf("recipe: %#v %v %v", s.Value, s.Quality, s.Err)
	}
	if s := get(3); s.Value != true {
		t.Errorf("heater: %#v %v %v", s.Value, s.Quality, s.Err)
	}
	if s := get(4); s.Quality != drivers.Bad || s.Err == nil || !strings.Contains(s.Err.Error(), "BadSensorFailure") {
		t.Errorf("sensor4: %#v %v %v", s.Value, s.Quality, s.Err)
	}
}

func TestInteropOPCUANone(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true, User: "op", Password: "secret"})
	t.Run("poll", func(t *testing.T) {
		d := newDriver(t, Config{Endpoint: srv.Endpoint, Tags: nodeTags})
		out := make([]drivers.Sample, len(nodeTags))
		if err := d.Read(context.Background(), out); err != nil {
			t.Fatal(err)
		}
		checkNodeSamples(t, func(i int) drivers.Sample { return out[i] })
	})
	t.Run("subscribe", func(t *testing.T) {
		d := newDriver(t, Config{Endpoint: srv.Endpoint, Tags: nodeTags, Interval: 200 * time.Millisecond})
		r := subscribe(t, d)
		waitFor(t, 15*time.Second, "every tag", func() bool {
			for i := range nodeTags {
				if _, ok := r.sample(i); !ok {
					return false
				}
			}
			return true
		})
		checkNodeSamples(t, func(i int) drivers.Sample { s, _ := r.sample(i); return s })
		first, _ := r.sample(0)
		waitFor(t, 15*time.Second, "the temperature to move", func() bool { s, _ := r.sample(0); return s.Value != first.Value })
	})
}

func TestInteropOPCUASecureUsername(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true, User: "op", Password: "secret"})
	pkiDir := t.TempDir()
	cfg := Config{Endpoint: srv.Endpoint, SecurityPolicy: "Basic256Sha256", SecurityMode: "SignAndEncrypt",
		Username: "op", Password: "secret", PKIDir: pkiDir, Tags: nodeTags}
	out := make([]drivers.Sample, len(nodeTags))

	// The server's certificate is unknown: refused, copied to rejected/.
	d := newDriver(t, cfg)
	err := d.Read(context.Background(), out)
	var ue *UntrustedError
	if !errors.As(err, &ue) {
		t.Fatalf("first read: %v, want an untrusted server certificate", err)
	}
	p, _ := OpenPKI(pkiDir)
	if _, err := p.Trust(ue.Thumbprint); err != nil {
		t.Fatal(err)
	}

	d = newDriver(t, cfg)
	if err := d.Read(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	checkNodeSamples(t, func(i int) drivers.Sample { return out[i] })
	if p, m := d.Security(); p != "Basic256Sha256" || m != "SignAndEncrypt" {
		t.Errorf("session %s/%s", p, m)
	}

	// A wrong password is a clear error.
	bad := cfg
	bad.Password = "wrong"
	d = newDriver(t, bad)
	err = d.Read(context.Background(), out)
	if err == nil || !strings.Contains(err.Error(), "BadUserAccessDenied") || !strings.Contains(err.Error(), `user "op"`) {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestInteropOPCUAClientRefused: a server that does not accept unknown
// clients refuses linegate's certificate until it is trusted there.
func TestInteropOPCUAClientRefused(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: false})
	pkiDir := t.TempDir()
	cfg := Config{Endpoint: srv.Endpoint, SecurityPolicy: "auto", PKIDir: pkiDir, Tags: nodeTags[:1]}
	d := newDriver(t, cfg)
	if err := d.loadPKI(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.pki.Trust(writeDER(t, srvCert(t, srv.Endpoint))); err != nil {
		t.Fatal(err)
	}
	out := make([]drivers.Sample, 1)
	err := d.Read(context.Background(), out)
	if err == nil || !strings.Contains(err.Error(), "refused linegate's certificate") || !strings.Contains(err.Error(), Thumbprint(d.own.DER)) {
		t.Fatalf("read: %v, want the server refusing linegate's certificate", err)
	}
	// node-opcua watches its trusted folder: the copy takes effect soon.
	srv.TrustClient(d.own.DER, "linegate")
	d = newDriver(t, cfg)
	var last error
	waitFor(t, 20*time.Second, "the server to accept linegate's certificate", func() bool {
		d.nextDial = time.Time{} // retry now, not after the backoff
		last = d.Read(context.Background(), out)
		return last == nil
	})
	if out[0].Quality != drivers.Good {
		t.Errorf("sample %v %v", out[0].Quality, out[0].Err)
	}
}

// TestInteropOPCUARestart: the server restarts in the middle of a
// subscribed run: tags go bad, the device down, then up with values again.
func TestInteropOPCUARestart(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true})
	d := newDriver(t, Config{Endpoint: srv.Endpoint, Tags: nodeTags[:3], Interval: 200 * time.Millisecond, Timeout: time.Second, ConnectTimeout: 3 * time.Second})
	r := subscribe(t, d)
	up := func() bool { n, err := r.lastState(); return n > 0 && err == nil }
	waitFor(t, 15*time.Second, "device up", up)
	srv.Stop()
	waitFor(t, 20*time.Second, "device down", func() bool { _, err := r.lastState(); return err != nil })
	for i := range 3 {
		if s, _ := r.sample(i); s.Quality != drivers.Bad {
			t.Errorf("tag %d while down: %v", i, s.Quality)
		}
	}
	srv.Start()
	waitFor(t, 40*time.Second, "device up again", up)
	waitFor(t, 15*time.Second, "good values again", func() bool {
		for i := range 3 {
			if s, _ := r.sample(i); s.Quality != drivers.Good {
				return false
			}
		}
		return true
	})
}

// srvCert fetches the server certificate from its endpoints.
func srvCert(t *testing.T, endpoint string) []byte {
	t.Helper()
	eps, err := opcuaGetEndpoints(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps {
		if len(ep.ServerCertificate) > 0 {
			return ep.ServerCertificate
		}
	}
	t.Fatal("no server certificate")
	return nil
}

func writeDER(t *testing.T, der []byte) string {
	t.Helper()
	path := t.TempDir() + "/server.der"
	if err := os.WriteFile(path, der, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func opcuaGetEndpoints(endpoint string) ([]*ua.EndpointDescription, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return gopcua.GetEndpoints(ctx, endpoint)
}
