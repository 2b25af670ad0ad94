package opcua

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// PKI is the certificate folder as OPC UA tools lay it out:
//
//	own/cert.pem, own/key.pem   the client's application instance certificate
//	trusted/, trusted/certs/    server certificates (DER or PEM) the client trusts, and CA
//	                            certificates: a CA trusts every certificate it signed
//	trusted/crl/                the CAs' revocation lists (DER or PEM), when present
//	rejected/<THUMBPRINT>.der   server certificates it refused, to inspect and trust
type PKI struct{ Dir string }

// Own is the client's certificate and key.
type Own struct {
	Cert     *x509.Certificate
	DER      []byte
	Key      *rsa.PrivateKey
	URI      string // ApplicationURI, from the certificate's SAN
	CertPath string
	KeyPath  string
	Created  bool // made by this call
}

// OpenPKI creates the folders (0700) if they are missing.
func OpenPKI(dir string) (*PKI, error) {
	if dir == "" {
		return nil, errors.New("pki: no folder")
	}
	for _, sub := range []string{"own", "trusted", "rejected"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
	}
	return &PKI{Dir: dir}, nil
}

// DefaultApplicationURI is urn:linegate:<hostname>.
func DefaultApplicationURI() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	return "urn:linegate:" + h
}

// Own loads own/cert.pem and own/key.pem, creating them on first use: RSA
// 2048, self-signed, appURI in the SAN (the server matches it against the
// session's ApplicationURI), the host name, localhost and 127.0.0.1 as
// DNS/IP SANs. An existing certificate is kept as it is, whatever appURI
// says: its URI is the one the servers have trusted.
func (p *PKI) Own(appURI string) (*Own, error) {
	o := &Own{CertPath: filepath.Join(p.Dir, "own", "cert.pem"), KeyPath: filepath.Join(p.Dir, "own", "key.pem")}
	certPEM, cerr := os.ReadFile(o.CertPath)
	keyPEM, kerr := os.ReadFile(o.KeyPath)
	switch {
	case cerr == nil && kerr == nil:
		return o, o.parse(certPEM, keyPEM)
	case errors.Is(cerr, fs.ErrNotExist) && errors.Is(kerr, fs.ErrNotExist):
	case cerr != nil && !errors.Is(cerr, fs.ErrNotExist):
		return nil, fmt.Errorf("pki: %w", cerr)
	case kerr != nil && !errors.Is(kerr, fs.ErrNotExist):
		return nil, fmt.Errorf("pki: %w", kerr)
	default:
		return nil, fmt.Errorf("pki: %s and %s: one is missing; remove the other to create a new pair", o.CertPath, o.KeyPath)
	}
	if appURI == "" {
		appURI = DefaultApplicationURI()
	}
	certPEM, keyPEM, err := newCertificate(appURI)
	if err != nil {
		return nil, fmt.Errorf("pki: create certificate: %w", err)
	}
	// The key first, 0600: a crash between the two writes leaves no
	// certificate without its key.
	if err := writeFile(o.KeyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(o.CertPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	o.Created = true
	return o, o.parse(certPEM, keyPEM)
}

func (o *Own) parse(certPEM, keyPEM []byte) error {
	der, err := decodeCert(certPEM)
	if err != nil {
		return fmt.Errorf("pki: %s: %w", o.CertPath, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("pki: %s: %w", o.CertPath, err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return fmt.Errorf("pki: %s: %w", o.KeyPath, err)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return fmt.Errorf("pki: %s does not belong to %s", o.KeyPath, o.CertPath)
	}
	o.Cert, o.DER, o.Key = cert, der, key
	if len(cert.URIs) > 0 {
		o.URI = cert.URIs[0].String()
	}
	if o.URI == "" {
		return fmt.Errorf("pki: %s has no ApplicationURI in its subject alternative names", o.CertPath)
	}
	return nil
}

func newCertificate(appURI string) (certPEM, keyPEM []byte, err error) {
	u, err := url.Parse(appURI)
	if err != nil {
		return nil, nil, fmt.Errorf("application URI %q: %w", appURI, err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	dns := []string{"localhost"}
	if host != "" && host != "localhost" {
		dns = append([]string{host}, dns...)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "linegate", Organization: []string{"linegate"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment |
			x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{u},
		DNSNames:              dns,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return certPEM, keyPEM, nil
}

// decodeCert accepts a PEM or a DER certificate, or a chain of them (the
// leaf first, as OPC UA servers send it); it returns the first.
func decodeCert(b []byte) ([]byte, error) {
	certs, err := certsIn(b)
	if err != nil {
		return nil, err
	}
	return certs[0].Raw, nil
}

// certsIn parses every certificate of b: PEM blocks (a bundle), or DER
// certificates one after another (an OPC UA chain).
func certsIn(b []byte) ([]*x509.Certificate, error) {
	if blk, rest := pem.Decode(b); blk != nil {
		var certs []*x509.Certificate
		for ; blk != nil; blk, rest = pem.Decode(rest) {
			if blk.Type != "CERTIFICATE" {
				return nil, fmt.Errorf("PEM block %q is not a CERTIFICATE", blk.Type)
			}
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return nil, err
			}
			certs = append(certs, c)
		}
		return certs, nil
	}
	certs, err := x509.ParseCertificates(b)
	if err == nil && len(certs) == 0 {
		err = errors.New("empty")
	}
	if err != nil {
		return nil, fmt.Errorf("neither a PEM nor a DER certificate: %w", err)
	}
	return certs, nil
}

func parseKey(b []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM private key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T, OPC UA needs RSA", k)
	}
	return rk, nil
}

func writeFile(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// Thumbprint is the certificate's SHA-1 in upper-case hex, as OPC UA tools
// show it.
func Thumbprint(der []byte) string {
	s := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(s[:]))
}

// trusted reads the certificates in trusted/ and trusted/certs/ (DER or
// PEM files, any name; bundles too).
func (p *PKI) trusted() ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for k, dir := range []string{filepath.Join(p.Dir, "trusted"), filepath.Join(p.Dir, "trusted", "certs")} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			if k > 0 && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("pki: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				continue
			}
			if certs, err := certsIn(b); err == nil {
				out = append(out, certs...)
			}
		}
	}
	return out, nil
}

// crls reads the revocation lists in trusted/crl/ (DER or PEM), each
// checked against the CA that issued it; a list no trusted CA signed is
// ignored.
func (p *PKI) crls(cas []*x509.Certificate) []*x509.RevocationList {
	dir := filepath.Join(p.Dir, "trusted", "crl")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []*x509.RevocationList
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil || e.IsDir() {
			continue
		}
		if blk, _ := pem.Decode(b); blk != nil {
			b = blk.Bytes
		}
		l, err := x509.ParseRevocationList(b)
		if err != nil {
			continue
		}
		for _, ca := range cas {
			if l.CheckSignatureFrom(ca) == nil {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// Trusted tells whether the leaf of der (a certificate or a chain) is in
// trusted/ itself.
func (p *PKI) Trusted(der []byte) (bool, error) {
	certs, err := certsIn(der)
	if err != nil {
		return false, err
	}
	trusted, err := p.trusted()
	if err != nil {
		return false, err
	}
	for _, c := range trusted {
		if bytes.Equal(c.Raw, certs[0].Raw) {
			return true, nil
		}
	}
	return false, nil
}

// Reject copies der to rejected/<THUMBPRINT>.der and returns its path.
func (p *PKI) Reject(der []byte) (string, error) {
	path := filepath.Join(p.Dir, "rejected", Thumbprint(der)+".der")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	return path, writeFile(path, der, 0o644)
}

// Trust copies a certificate into trusted/: arg is a certificate file (DER
// or PEM) or the thumbprint of one in rejected/ (which is then removed
// from there). It returns the path written.
func (p *PKI) Trust(arg string) (string, error) {
	var der []byte
	var from string
	if b, err := os.ReadFile(arg); err == nil {
		if der, err = decodeCert(b); err != nil {
			return "", fmt.Errorf("%s: %w", arg, err)
		}
	} else {
		tp := strings.ToUpper(strings.NewReplacer(":", "", " ", "").Replace(arg))
		if len(tp) != 40 {
			return "", fmt.Errorf("%s: %w (and it is not a 40-digit SHA-1 thumbprint)", arg, err)
		}
		from = filepath.Join(p.Dir, "rejected", tp+".der")
		b, err := os.ReadFile(from)
		if err != nil {
			return "", fmt.Errorf("no rejected certificate with thumbprint %s: %w", tp, err)
		}
		if der, err = decodeCert(b); err != nil {
			return "", fmt.Errorf("%s: %w", from, err)
		}
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return "", fmt.Errorf("%s: %w", arg, err)
	}
	path := filepath.Join(p.Dir, "trusted", Thumbprint(der)+".der")
	if err := writeFile(path, der, 0o644); err != nil {
		return "", err
	}
	if from != "" {
		os.Remove(from)
	}
	return path, nil
}

// UntrustedError is a server certificate that is not in trusted/.
type UntrustedError struct {
	Thumbprint string
	Subject    string
	Rejected   string // where it was copied
	PKIDir     string
	Issuer     string // the CA that signed it, if not self-signed
}

func (e *UntrustedError) Error() string {
	if e.Issuer != "" {
		return fmt.Sprintf("server certificate %q (SHA-1 thumbprint %s), signed by %q, is not trusted: copied to %s; after checking it, trust it with: linegate opcua trust --pki-dir %s %s (or trust the CA: copy its certificate to %s)",
			e.Subject, e.Thumbprint, e.Issuer, e.Rejected, e.PKIDir, e.Thumbprint, filepath.Join(e.PKIDir, "trusted"))
	}
	return fmt.Sprintf("server certificate %q (SHA-1 thumbprint %s) is not trusted: copied to %s; after checking it, trust it with: linegate opcua trust --pki-dir %s %s",
		e.Subject, e.Thumbprint, e.Rejected, e.PKIDir, e.Thumbprint)
}

// checkServer returns nil when der is trusted, else copies it to rejected/
// and returns an *UntrustedError.
//
// der is what the server sends: its certificate, or a chain (leaf + CAs).
// The leaf is trusted when it is in trusted/ itself, or when a CA
// certificate in trusted/ signed it (through the chain's intermediates), so
// a renewed PLC certificate under the same plant CA keeps working. Either
// way a leaf (or intermediate) that its CA's list in trusted/crl revokes is
// refused. An untrusted leaf is copied to rejected/ by its thumbprint.
func (p *PKI) checkServer(der []byte) error {
	chain, err := certsIn(der)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	leaf := chain[0]
	trusted, err := p.trusted()
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	var cas []*x509.Certificate
	ok := false
	for _, c := range trusted {
		if bytes.Equal(c.Raw, leaf.Raw) {
			ok = true
		}
		if c.IsCA {
			roots.AddCert(c)
			cas = append(cas, c)
		}
	}
	var path []*x509.Certificate
	if len(cas) > 0 {
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err == nil {
			ok, path = true, chains[0]
		}
	}
	if len(path) == 0 {
		path = []*x509.Certificate{leaf}
	}
	for _, l := range p.crls(cas) {
		for _, c := range path {
			if !bytes.Equal(c.RawIssuer, l.RawIssuer) {
				continue
			}
			for _, r := range l.RevokedCertificateEntries {
				if r.SerialNumber != nil && r.SerialNumber.Cmp(c.SerialNumber) == 0 {
					return fmt.Errorf("server certificate %q (SHA-1 thumbprint %s): %q is revoked by its CA %q (a list in %s)",
						leaf.Subject, Thumbprint(leaf.Raw), c.Subject, l.Issuer, filepath.Join(p.Dir, "trusted", "crl"))
				}
			}
		}
	}
	if ok {
		return nil
	}
	rejected, err := p.Reject(leaf.Raw)
	if err != nil {
		return err
	}
	ue := &UntrustedError{Thumbprint: Thumbprint(leaf.Raw), Subject: leaf.Subject.String(), Rejected: rejected, PKIDir: p.Dir}
	if len(chain) > 1 || !bytes.Equal(leaf.RawIssuer, leaf.RawSubject) {
		ue.Issuer = leaf.Issuer.String()
	}
	return ue
}
