// Package opcua is linegate's OPC UA client driver, on github.com/gopcua/opcua.
//
// One goroutine owns the client at a time: the collector's, through Read
// (poll mode) or Subscribe (subscribe mode). Both reach the server through
// the same connect path (endpoint selection, certificate trust, session,
// node resolution) with one capped backoff; gopcua's own reconnect loop is
// off, so a lost session never gets re-created by two loops at once.
package opcua

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"
)

// Config is one OPC UA device.
type Config struct {
	Device   string // for messages: "oven02/zone1_temp: ..."
	Endpoint string // opc.tcp://host:port[/path]

	// SecurityPolicy is None, Basic128Rsa15, Basic256, Basic256Sha256,
	// Aes128_Sha256_RsaOaep, Aes256_Sha256_RsaPss or auto ("" = None).
	// auto picks the strongest endpoint the server offers.
	SecurityPolicy string
	// SecurityMode is None, Sign or SignAndEncrypt ("" = SignAndEncrypt
	// unless the policy is None; ignored with auto).
	SecurityMode string

	// Username and Password log in as a user; empty = anonymous unless
	// UserCertFile is set (X.509 user token: PEM or DER certificate and
	// its PEM RSA key).
	Username, Password        string
	UserCertFile, UserKeyFile string

	// PKIDir holds own/ (the client certificate, created on first use),
	// trusted/ and rejected/.
	PKIDir string
	// ApplicationURI of the client; "" = urn:linegate:<hostname>, or the
	// URI of an existing own/cert.pem.
	ApplicationURI string

	// Interval is the publishing interval (subscribe) of the device.
	Interval time.Duration
	// MaxClockSkew: a SourceTimestamp further ahead of the gateway's clock
	// makes the sample uncertain, timed by the gateway; 0 = 5 s, < 0 = off.
	MaxClockSkew time.Duration
	// AllowPlainPassword lets a password go over an endpoint whose user
	// token would carry it readable on the wire (token policy None on a
	// channel that is not SignAndEncrypt); without it linegate refuses.
	AllowPlainPassword bool

	// KeepAlive is the keep-alive period asked for in subscribe mode (the
	// server answers an idle Publish after it); 0 = 10 s. A subscription
	// without any answer for 2.5 periods is taken for dead and created
	// again.
	KeepAlive time.Duration
	// SamplingInterval of the monitored items; 0 = Interval.
	SamplingInterval time.Duration
	// QueueSize of the monitored items on the server; 0 = 1.
	QueueSize uint32
	// Timeout bounds one request (a Read, a browse step); connecting is
	// allowed ConnectTimeout.
	Timeout        time.Duration
	ConnectTimeout time.Duration

	Tags   []Tag
	Logger *slog.Logger
}

// Tag is one value of the device.
type Tag struct {
	Name string
	// Node is a node id (ns=2;s=Oven02.Zone1.Temp, i=2258, ns=3;g=..., ns=1;b=...),
	// or one with its namespace URI (nsu=urn:plant;s=Oven02.Zone1.Temp),
	// whose index is looked up in the namespace array of every new session.
	Node string
	// BrowsePath, instead of Node, is a path of browse names from the
	// Objects folder ("Objects/Line1/Press01/Temperature"); an element may
	// carry its namespace index ("2:Press01"). Resolved in every new
	// session (a PLC program download renumbers nodes), and again after the
	// server answered BadNodeIdUnknown.
	BrowsePath string
	// Deadband (absolute) is handed to the server as the monitored item's
	// data-change filter in subscribe mode; 0 = every change.
	Deadband float64
}

// Defaults.
const (
	DefaultInterval       = time.Second
	DefaultTimeout        = 2 * time.Second
	DefaultConnectTimeout = 10 * time.Second
	DefaultMaxClockSkew   = 5 * time.Second
	// defaultChunk is used when the server states no operation limit.
	defaultChunk = 1000
)

// Policies are the security policies by strength, weakest first.
var Policies = []string{"None", "Basic128Rsa15", "Basic256", "Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"}

// Modes are the message security modes.
var Modes = []string{"None", "Sign", "SignAndEncrypt"}

// tagRef is a tag with its parsed source.
type tagRef struct {
	Tag
	id   *ua.NodeID // parsed Node; nil for a browse path or an nsu= node
	path []pathElem
	// nsu is the namespace URI of an nsu= node, local the rest of it
	// ("s=Oven02.Zone1.Temp").
	nsu, local string
}

// parseNSU splits "nsu=URI;s=Name" and checks the identifier part.
func parseNSU(node string) (uri, local string, err error) {
	rest := strings.TrimPrefix(node, "nsu=")
	// The URI ends at the last ";" before the identifier: URIs may hold ";".
	k := strings.LastIndex(rest, ";")
	for k >= 0 && !nodeIDText.MatchString(rest[k+1:]) {
		k = strings.LastIndex(rest[:k], ";")
	}
	if k <= 0 {
		return "", "", errors.New("want nsu=<namespace URI>;i=|s=|g=|b=<id>")
	}
	uri, local = rest[:k], rest[k+1:]
	if _, err := ua.ParseNodeID("ns=1;" + local); err != nil {
		return "", "", err
	}
	return uri, local, nil
}

func (c *Config) check() ([]tagRef, error) {
	if c.Endpoint == "" {
		return nil, errors.New("no endpoint")
	}
	if c.SecurityPolicy == "" {
		c.SecurityPolicy = "None"
	}
	if c.SecurityPolicy != "auto" && policyURI(c.SecurityPolicy) == "" {
		return nil, fmt.Errorf("unknown security policy %q", c.SecurityPolicy)
	}
	if c.SecurityMode == "" {
		c.SecurityMode = "SignAndEncrypt"
		if c.SecurityPolicy == "None" {
			c.SecurityMode = "None"
		}
	}
	if c.SecurityPolicy != "auto" {
		if _, ok := modeOf(c.SecurityMode); !ok {
			return nil, fmt.Errorf("unknown security mode %q", c.SecurityMode)
		}
		if (c.SecurityPolicy == "None") != (c.SecurityMode == "None") {
			return nil, fmt.Errorf("security policy %s and mode %s do not go together", c.SecurityPolicy, c.SecurityMode)
		}
	}
	if (c.UserCertFile == "") != (c.UserKeyFile == "") {
		return nil, errors.New("user certificate and key go together")
	}
	if c.UserCertFile != "" && c.Username != "" {
		return nil, errors.New("username and user certificate are exclusive")
	}
	if c.PKIDir == "" {
		return nil, errors.New("no pki dir")
	}
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.MaxClockSkew == 0 {
		c.MaxClockSkew = DefaultMaxClockSkew
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = defaultKeepAlive
	}
	if c.SamplingInterval <= 0 {
		c.SamplingInterval = c.Interval
	}
	if c.QueueSize == 0 {
		c.QueueSize = 1
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = max(DefaultConnectTimeout, c.Timeout)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	refs := make([]tagRef, len(c.Tags))
	for i, t := range c.Tags {
		refs[i].Tag = t
		switch {
		case t.Node != "" && t.BrowsePath != "":
			return nil, fmt.Errorf("tag %s: node and browse_path are exclusive", t.Name)
		case strings.HasPrefix(t.Node, "nsu="):
			uri, local, err := parseNSU(t.Node)
			if err != nil {
				return nil, fmt.Errorf("tag %s: node %q: %v", t.Name, t.Node, err)
			}
			refs[i].nsu, refs[i].local = uri, local
		case t.Node != "":
			id, err := ua.ParseNodeID(t.Node)
			if err == nil && !nodeIDText.MatchString(t.Node) {
				err = errors.New("want ns=<index>;i=|s=|g=|b=<id>")
			}
			if err != nil {
				return nil, fmt.Errorf("tag %s: node %q: %v", t.Name, t.Node, err)
			}
			refs[i].id = id
		case t.BrowsePath != "":
			p, err := parsePath(t.BrowsePath)
			if err != nil {
				return nil, fmt.Errorf("tag %s: %v", t.Name, err)
			}
			refs[i].path = p
		default:
			return nil, fmt.Errorf("tag %s: node or browse_path is required", t.Name)
		}
	}
	return refs, nil
}
