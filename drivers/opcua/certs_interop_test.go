package opcua

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/testdata/peers"
)

// plantCA is a CA made with openssl, as a plant's IT makes one, and the
// server certificates it signs.
type plantCA struct {
	t   *testing.T
	dir string
}

func (ca *plantCA) openssl(args ...string) {
	ca.t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = ca.dir
	if out, err := cmd.CombinedOutput(); err != nil {
		ca.t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newPlantCA(t *testing.T) *plantCA {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatalf("openssl is needed (apt-get install openssl): %v", err)
	}
	ca := &plantCA{t: t, dir: t.TempDir()}
	ca.openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "365",
		"-subj", "/O=Plant/CN=Plant CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	conf := "[ca]\ndefault_ca = plant\n[plant]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 30\n" +
		"certificate = ca.pem\nprivate_key = ca.key\n"
	for name, text := range map[string]string{"ca.cnf": conf, "index.txt": "", "crlnumber": "01\n"} {
		if err := os.WriteFile(filepath.Join(ca.dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca
}

// leaf signs a server certificate for uri; it returns the paths of the
// chain file (leaf + CA, PEM), the key and the leaf alone.
func (ca *plantCA) leaf(name, uri string) (chain, key, leaf string) {
	ca.t.Helper()
	ext := "subjectAltName=URI:" + uri + ",DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" +
		"keyUsage=critical,digitalSignature,nonRepudiation,keyEncipherment,dataEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n"
	if err := os.WriteFile(filepath.Join(ca.dir, name+".ext"), []byte(ext), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	ca.openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name+".key", "-out", name+".csr", "-subj", "/O=Plant/CN="+name)
	ca.openssl("x509", "-req", "-in", name+".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "30",
		"-extfile", name+".ext", "-out", name+".pem")
	l, err := os.ReadFile(filepath.Join(ca.dir, name+".pem"))
	if err != nil {
		ca.t.Fatal(err)
	}
	c, err := os.ReadFile(filepath.Join(ca.dir, "ca.pem"))
	if err != nil {
		ca.t.Fatal(err)
	}
	chain = filepath.Join(ca.dir, name+"-chain.pem")
	if err := os.WriteFile(chain, append(l, c...), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return chain, filepath.Join(ca.dir, name+".key"), filepath.Join(ca.dir, name+".pem")
}

// revoke revokes a certificate it signed and writes the CA's list to path.
func (ca *plantCA) revoke(cert, path string) {
	ca.t.Helper()
	ca.openssl("ca", "-config", "ca.cnf", "-revoke", cert)
	ca.openssl("ca", "-config", "ca.cnf", "-gencrl", "-out", path)
}

func derOf(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	der, err := decodeCert(b)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestInteropOPCUACertChain: the server sends its certificate as a chain
// (leaf + plant CA), as PLCs with CA-signed certificates do. The leaf goes
// through rejected/ -> trusted/ by its thumbprint; the CA certificate in
// trusted/ trusts it and a renewed certificate under the same CA (end to
// end once the server sends it alone: gopcua v0.9.1 cannot sign a session
// with a chain, and linegate says so); a CRL of the CA in trusted/crl
// revokes it.
func TestInteropOPCUACertChain(t *testing.T) {
	peers.Interop(t)
	t.Parallel()
	ca := newPlantCA(t)
	const uri = "urn:linegate:test:plc1"
	chain1, key1, leaf1 := ca.leaf("plc1", uri)
	chain2, key2, leaf2 := ca.leaf("plc1-renewed", uri)
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true, CertFile: chain1, KeyFile: key1, ApplicationURI: uri})
	// chain is what the server sends now.
	chain := func() []byte {
		eps, err := opcuaGetEndpoints(srv.Endpoint)
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
	if certs, err := certsIn(chain()); err != nil || len(certs) != 2 {
		t.Fatalf("the server sends %d certificates (%v), want leaf + CA", len(certs), err)
	}
	// check is linegate's trust decision on the chain, as a connect makes it.
	check := func(pki string) error {
		p, err := OpenPKI(pki)
		if err != nil {
			t.Fatal(err)
		}
		return p.checkServer(chain())
	}

	t.Run("leaf rejected then trusted", func(t *testing.T) {
		pki := t.TempDir()
		d := newDriver(t, Config{Endpoint: srv.Endpoint, SecurityPolicy: "Basic256Sha256", SecurityMode: "SignAndEncrypt", PKIDir: pki, Tags: nodeTags[2:3]})
		err := d.Read(context.Background(), make([]drivers.Sample, 1))
		var ue *UntrustedError
		if !errors.As(err, &ue) {
			t.Fatalf("read: %v, want the leaf untrusted", err)
		}
		if want := Thumbprint(derOf(t, leaf1)); ue.Thumbprint != want || !strings.Contains(err.Error(), `signed by "CN=Plant CA,O=Plant"`) {
			t.Fatalf("untrusted %s (%v), want the leaf's thumbprint %s and its CA", ue.Thumbprint, err, want)
		}
		if b, err := os.ReadFile(ue.Rejected); err != nil || !bytes.Equal(b, derOf(t, leaf1)) {
			t.Fatalf("rejected/ holds %d bytes (%v), want the leaf", len(b), err)
		}
		if _, err := d.pki.Trust(ue.Thumbprint); err != nil {
			t.Fatal(err)
		}
		if err := check(pki); err != nil {
			t.Fatalf("after trust: %v", err)
		}
		// The session itself then fails on gopcua's signature over the
		// chain; the error says so.
		d.nextDial = time.Time{}
		err = d.Read(context.Background(), make([]drivers.Sample, 1))
		if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), "sends its certificate as a chain (2 certificates)") {
			t.Fatalf("read after trust: %v", err)
		}
	})

	caPKI := t.TempDir()
	if _, err := OpenPKI(caPKI); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(caPKI, "trusted", "plant-ca.pem"), mustRead(t, filepath.Join(ca.dir, "ca.pem")), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("CA trusted", func(t *testing.T) {
		if err := check(caPKI); err != nil {
			t.Fatalf("with the plant CA in trusted/: %v", err)
		}
	})
	t.Run("renewed under the same CA", func(t *testing.T) {
		srv.Stop()
		srv.SetCertificate(chain2, key2)
		srv.Start()
		if c, _ := certsIn(chain()); !bytes.Equal(c[0].Raw, derOf(t, leaf2)) {
			t.Fatal("the server did not take the renewed certificate")
		}
		if err := check(caPKI); err != nil {
			t.Fatalf("renewed certificate: %v", err)
		}
		if err := check(t.TempDir()); err == nil {
			t.Fatal("the renewed certificate is trusted without the CA")
		}
	})
	// The certificate alone (no chain attached): gopcua signs the session
	// right, and the plant CA in trusted/ is all linegate needs.
	read := func() error {
		d := newDriver(t, Config{Endpoint: srv.Endpoint, SecurityPolicy: "Basic256Sha256", SecurityMode: "SignAndEncrypt", PKIDir: caPKI, Tags: nodeTags[2:3]})
		out := make([]drivers.Sample, 1)
		err := d.Read(context.Background(), out)
		if err == nil && (out[0].Quality != drivers.Good || out[0].Value != "PCB-4711") {
			t.Errorf("recipe: %v %v %v", out[0].Value, out[0].Quality, out[0].Err)
		}
		return err
	}
	t.Run("CA trusted, certificate alone", func(t *testing.T) {
		srv.Stop()
		srv.SetCertificate(leaf2, key2)
		srv.Start()
		if err := read(); err != nil {
			t.Fatalf("read: %v", err)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		if err := os.MkdirAll(filepath.Join(caPKI, "trusted", "crl"), 0o700); err != nil {
			t.Fatal(err)
		}
		ca.revoke(leaf2, filepath.Join(caPKI, "trusted", "crl", "plant.crl"))
		err := read()
		if err == nil || !strings.Contains(err.Error(), `"CN=plc1-renewed,O=Plant" is revoked by its CA "CN=Plant CA,O=Plant"`) {
			t.Fatalf("read: %v, want the certificate revoked", err)
		}
	})
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
