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
//	trusted/                    server certificates (DER or PEM) the client trusts
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

// decodeCert accepts a PEM or a DER certificate.
func decodeCert(b []byte) ([]byte, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a CERTIFICATE", blk.Type)
		}
		return blk.Bytes, nil
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		return nil, fmt.Errorf("neither a PEM nor a DER certificate: %w", err)
	}
	return b, nil
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

// Trusted tells whether der is in trusted/ (DER or PEM files, any name).
func (p *PKI) Trusted(der []byte) (bool, error) {
	dir := filepath.Join(p.Dir, "trusted")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("pki: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if c, err := decodeCert(b); err == nil && bytes.Equal(c, der) {
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
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("server certificate %q (SHA-1 thumbprint %s) is not trusted: copied to %s; after checking it, trust it with: linegate opcua trust --pki-dir %s %s",
		e.Subject, e.Thumbprint, e.Rejected, e.PKIDir, e.Thumbprint)
}

// checkServer returns nil when der is trusted, else copies it to rejected/
// and returns an *UntrustedError.
func (p *PKI) checkServer(der []byte) error {
	ok, err := p.Trusted(der)
	if err != nil || ok {
		return err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	path, err := p.Reject(der)
	if err != nil {
		return err
	}
	return &UntrustedError{Thumbprint: Thumbprint(der), Subject: cert.Subject.String(), Rejected: path, PKIDir: p.Dir}
}
