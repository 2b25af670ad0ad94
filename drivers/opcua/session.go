package opcua

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// Reconnect backoff: the first retry after 1s, doubling up to 30s.
const (
	backoffMin = time.Second
	backoffMax = 30 * time.Second
	// retryNodes is how often nodes that failed (unresolved browse paths,
	// monitored items the server refused) are tried again.
	retryNodes = 30 * time.Second
)

type backoff struct{ n int }

func (b *backoff) next() time.Duration {
	d := min(backoffMin<<min(b.n, 5), backoffMax)
	b.n++
	// ±10% jitter, so that gateways restarted together do not hit a PLC
	// in step.
	return d + time.Duration((rand.Float64()*0.2-0.1)*float64(d))
}

func (b *backoff) reset() { b.n = 0 }

// session is one connected client: secure channel, session and the
// server's operation limits. It is owned by the goroutine that dialled it.
//
// gopcua reports every ServiceFault on the channel as a disconnect (its
// state callback says Disconnected, and with its reconnect loop off it
// stops its monitor and publish goroutines): an idle Publish answered
// BadTimeout would look like a lost connection. So linegate does not
// listen to gopcua's connection state at all. A session is lost when a
// request of its own fails with a connection or session error (lost), and
// subscriptions run on linegate's own Publish loop (subscribe.go).
type session struct {
	c       *opcua.Client
	ep      *ua.EndpointDescription
	maxRead int
	maxMon  int
}

func (s *session) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s.c.Close(ctx)
}

// lost tells a failed request whose session or connection is gone (connect
// again) from a service fault of a server that answered (keep the session
// and handle the fault where it belongs).
func lost(err error) bool {
	if err == nil {
		return false
	}
	var sc ua.StatusCode
	var se StatusError
	switch {
	case errors.As(err, &se):
		sc = se.Code
	case !errors.As(err, &sc):
		// io.EOF, a deadline without an answer, a socket or decoding error
		return true
	}
	switch sc {
	case ua.StatusBadSessionIDInvalid, ua.StatusBadSessionClosed, ua.StatusBadSessionNotActivated,
		ua.StatusBadSecureChannelIDInvalid, ua.StatusBadSecureChannelClosed, ua.StatusBadSecureChannelTokenUnknown,
		ua.StatusBadConnectionClosed, ua.StatusBadConnectionRejected, ua.StatusBadServerNotConnected,
		ua.StatusBadNotConnected, ua.StatusBadCommunicationError, ua.StatusBadDisconnect,
		ua.StatusBadServerHalted, ua.StatusBadShutdown, ua.StatusBadTCPInternalError,
		ua.StatusBadDecodingError, ua.StatusBadEncodingError, ua.StatusBadRequestTooLarge,
		ua.StatusBadResponseTooLarge, ua.StatusBadNoCommunication:
		return true
	}
	return false
}

// tokenType is the user identity token the config asks for.
func (d *Driver) tokenType() ua.UserTokenType {
	switch {
	case d.cfg.Username != "":
		return ua.UserTokenTypeUserName
	case d.cfg.UserCertFile != "":
		return ua.UserTokenTypeCertificate
	}
	return ua.UserTokenTypeAnonymous
}

// loadPKI opens the pki folder and the client certificate once (created
// on first use).
func (d *Driver) loadPKI() error {
	if d.own != nil {
		return nil
	}
	p, err := OpenPKI(d.cfg.PKIDir)
	if err != nil {
		return err
	}
	own, err := p.Own(d.cfg.ApplicationURI)
	if err != nil {
		return err
	}
	if own.Created {
		d.log.Info("opcua: created the client certificate", "cert", own.CertPath, "uri", own.URI, "thumbprint", Thumbprint(own.DER))
	}
	d.pki, d.own = p, own
	return nil
}

// dial connects: endpoint selection, server certificate trust, secure
// channel, session, operation limits. The only path to a session, for
// polling and subscribing alike.
//
// requestTimeout is the timeout hint of every request and gopcua's own
// deadline for its answer: a subscribed session's Publish waits up to a
// keep-alive period for its answer, so it needs more than a Read. Every
// other request carries its own shorter context deadline.
func (d *Driver) dial(ctx context.Context, requestTimeout time.Duration) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ConnectTimeout)
	defer cancel()
	if err := d.loadPKI(); err != nil {
		return nil, err
	}
	eps, err := opcua.GetEndpoints(ctx, d.cfg.Endpoint, opcua.DialTimeout(d.cfg.ConnectTimeout))
	if err != nil {
		return nil, fmt.Errorf("%s: get endpoints: %w", d.cfg.Endpoint, describe(err))
	}
	tt := d.tokenType()
	ep, err := selectEndpoint(eps, d.cfg.SecurityPolicy, d.cfg.SecurityMode, tt, d.cfg.AllowPlainPassword)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.cfg.Endpoint, err)
	}
	secure := ep.SecurityMode != ua.MessageSecurityModeNone
	if secure {
		if err := d.pki.checkServer(ep.ServerCertificate); err != nil {
			return nil, fmt.Errorf("%s: %w", d.cfg.Endpoint, err)
		}
	}
	s := &session{ep: ep, maxRead: defaultChunk, maxMon: defaultChunk}
	opts := []opcua.Option{
		opcua.SecurityFromEndpoint(ep, tt),
		opcua.ApplicationURI(d.own.URI),
		opcua.ApplicationName("linegate"),
		opcua.ProductURI("urn:linegate"),
		opcua.SessionName("linegate " + d.cfg.Device),
		// Longer than a poll: an idle session that timed out between two
		// reads would turn every read into a reconnect (gopcua #611).
		opcua.SessionTimeout(max(2*time.Minute, 3*d.cfg.Interval)),
		opcua.RequestTimeout(max(requestTimeout, d.cfg.ConnectTimeout)),
		opcua.DialTimeout(d.cfg.ConnectTimeout),
		// One reconnect path: ours. gopcua's would race it with a second
		// CreateSession loop (and it recreates the secure channel on any
		// service fault).
		opcua.AutoReconnect(false),
	}
	if secure || tt == ua.UserTokenTypeCertificate {
		opts = append(opts, opcua.Certificate(d.own.DER), opcua.PrivateKey(d.own.Key))
	}
	switch tt {
	case ua.UserTokenTypeUserName:
		opts = append(opts, opcua.AuthUsername(d.cfg.Username, d.cfg.Password))
	case ua.UserTokenTypeCertificate:
		cert, key, err := loadUserCert(d.cfg.UserCertFile, d.cfg.UserKeyFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, opcua.AuthCertificate(cert), opcua.AuthPrivateKey(key))
	default:
		opts = append(opts, opcua.AuthAnonymous())
	}
	c, err := opcua.NewClient(d.cfg.Endpoint, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.cfg.Endpoint, err)
	}
	s.c = c
	if err := c.Connect(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("%s: connect (%s/%s, %s login): %w", d.cfg.Endpoint, PolicyName(ep.SecurityPolicyURI), ModeName(ep.SecurityMode), tokenName(tt), d.describeConnect(err, ep))
	}
	d.limits(ctx, s)
	d.sessions.Add(1)
	d.log.Debug("opcua: session created", "device", d.cfg.Device, "endpoint", d.cfg.Endpoint,
		"policy", PolicyName(ep.SecurityPolicyURI), "mode", ModeName(ep.SecurityMode), "max_read", s.maxRead, "max_monitored", s.maxMon)
	return s, nil
}

// limits reads the server's MaxNodesPerRead and MaxMonitoredItemsPerCall
// (0 or absent: no limit stated, linegate uses its own chunk size). A lower
// limit learned from BadTooManyOperations in an earlier session wins: the
// server that answered it once will again.
func (d *Driver) limits(ctx context.Context, s *session) {
	defer func() {
		if d.learnedRead > 0 {
			s.maxRead = min(s.maxRead, d.learnedRead)
		}
		if d.learnedMon > 0 {
			s.maxMon = min(s.maxMon, d.learnedMon)
		}
	}()
	req := &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead), AttributeID: ua.AttributeIDValue},
		{NodeID: ua.NewNumericNodeID(0, id.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall), AttributeID: ua.AttributeIDValue},
	}, TimestampsToReturn: ua.TimestampsToReturnNeither}
	res, err := s.c.Read(ctx, req)
	if err != nil || len(res.Results) != 2 {
		return
	}
	for i, dst := range []*int{&s.maxRead, &s.maxMon} {
		dv := res.Results[i]
		if dv == nil || dv.Status != ua.StatusOK || dv.Value == nil {
			continue
		}
		if v, ok := dv.Value.Value().(uint32); ok && v > 0 {
			*dst = int(min(v, defaultChunk))
		}
	}
}

// describe names an OPC UA status error by its symbolic name.
func describe(err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("connection closed by the server (%w)", err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer in time (%w)", err)
	}
	var sc ua.StatusCode
	if errors.As(err, &sc) {
		return StatusError{sc}
	}
	return err
}

// describeConnect adds what to do about the usual connect failures.
func (d *Driver) describeConnect(err error, ep *ua.EndpointDescription) error {
	var sc ua.StatusCode
	if !errors.As(err, &sc) {
		return err
	}
	switch sc {
	case ua.StatusBadApplicationSignatureInvalid:
		if certs, err := certsIn(ep.ServerCertificate); err == nil && len(certs) > 1 {
			// gopcua v0.9.1 signs the server's whole chain with the nonce;
			// servers check the signature over their own certificate alone.
			return fmt.Errorf("%w: the server sends its certificate as a chain (%d certificates), and gopcua v0.9.1, the OPC UA library of linegate, "+
				"then signs the session wrongly: give the server its certificate without the CA attached (the CA can stay in linegate's trusted/)",
				StatusError{sc}, len(certs))
		}
		return StatusError{sc}
	case ua.StatusBadUserAccessDenied, ua.StatusBadIdentityTokenRejected, ua.StatusBadIdentityTokenInvalid:
		if d.cfg.Username != "" {
			return fmt.Errorf("%w: the server refused user %q: check auth.username and the password", StatusError{sc}, d.cfg.Username)
		}
		return fmt.Errorf("%w: the server refused the login", StatusError{sc})
	case ua.StatusBadSecurityChecksFailed, ua.StatusBadCertificateUntrusted, ua.StatusBadCertificateInvalid,
		ua.StatusBadCertificateURIInvalid, ua.StatusBadCertificateUseNotAllowed:
		return fmt.Errorf("%w: the server refused linegate's certificate %s (thumbprint %s): trust it on the server (its rejected list)",
			StatusError{sc}, d.own.CertPath, Thumbprint(d.own.DER))
	}
	return StatusError{sc}
}

func loadUserCert(certFile, keyFile string) ([]byte, *rsa.PrivateKey, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, fmt.Errorf("user certificate: %w", err)
	}
	der, err := decodeCert(cb)
	if err != nil {
		return nil, nil, fmt.Errorf("user certificate %s: %w", certFile, err)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("user key: %w", err)
	}
	key, err := parseKey(kb)
	if err != nil {
		return nil, nil, fmt.Errorf("user key %s: %w", keyFile, err)
	}
	return der, key, nil
}
