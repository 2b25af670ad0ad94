package uplink

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// connectError makes a refused connection say what to check. The broker's
// reasons reach the client poorly: MQTT 3.1.1 has one code for a refused
// login, and with TLS 1.3 a broker that rejects the client certificate
// does so after the client's handshake is done, so the client sees its
// CONNECT write reset rather than the TLS alert.
func (u *Uplink) connectError(err error, broker *url.URL) error {
	switch {
	case errors.Is(err, packets.ErrorRefusedNotAuthorised), errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		if u.cfg.Username == "" {
			return fmt.Errorf("the broker refused the anonymous login (set uplink.username and password): %w", err)
		}
		return fmt.Errorf("the broker refused the login of user %q (check the password or password_file): %w", u.cfg.Username, err)
	case !u.usesTLS(broker):
		return err
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return err // names the broker's certificate problem already
	}
	if c := u.clientCert(); c != nil {
		now := u.now()
		switch {
		case now.After(c.NotAfter):
			return fmt.Errorf("client certificate %q expired on %s: the broker refuses it: %w", c.Subject.CommonName, c.NotAfter.UTC().Format(time.DateOnly), err)
		case now.Before(c.NotBefore):
			return fmt.Errorf("client certificate %q is not valid before %s (is the clock right?): %w", c.Subject.CommonName, c.NotBefore.UTC().Format(time.RFC3339), err)
		}
	}
	if !closedByPeer(err) {
		return err
	}
	if u.clientCert() != nil {
		return fmt.Errorf("the broker closed the TLS connection: it may refuse the client certificate (issued by a CA in its cafile? revoked?), or TLS is off at that port: %w", err)
	}
	if !handshakeDone(err) {
		return fmt.Errorf("%s; if it requires a client certificate, set tls cert_file and key_file: %w", NotTLSHint, err)
	}
	return fmt.Errorf("the broker closed the TLS connection: if it requires a client certificate, set tls cert_file and key_file: %w", err)
}

// usesTLS tells whether the failed attempt was over TLS: broker is the
// last broker that accepted TCP and the handshake, nil when none did (then
// any TLS broker may have been the one).
func (u *Uplink) usesTLS(broker *url.URL) bool {
	isTLS := func(b *url.URL) bool { return b.Scheme == "ssl" || b.Scheme == "wss" }
	if broker != nil {
		return isTLS(broker)
	}
	for _, b := range u.brokers {
		if isTLS(b) {
			return true
		}
	}
	return false
}

// clientCert is the leaf of the configured client certificate, or nil.
func (u *Uplink) clientCert() *x509.Certificate {
	if u.cfg.TLS == nil || len(u.cfg.TLS.Certificates) == 0 {
		return nil
	}
	c := u.cfg.TLS.Certificates[0]
	if c.Leaf != nil {
		return c.Leaf
	}
	if len(c.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}

// closedByPeer: the broker ended the connection (reset, EOF, or a TLS
// alert it sent).
func closedByPeer(err error) bool {
	var alert tls.AlertError
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || errors.As(err, &alert)
}

// handshakeDone tells a connection closed after the TLS handshake (a TLS
// alert, a client certificate refused after TLS 1.3's handshake) from one
// closed during it, before the broker said a word of TLS.
func handshakeDone(err error) bool {
	var alert tls.AlertError
	var rec tls.RecordHeaderError
	return errors.As(err, &alert) || errors.As(err, &rec) || strings.Contains(err.Error(), "remote error: tls:")
}
