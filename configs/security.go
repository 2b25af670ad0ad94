package configs

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"
)

// MinTokenLength is the shortest http.token that does not draw a warning.
const MinTokenLength = 16

// certExpiryWarning: a client certificate that expires sooner gets a
// warning at every start, so that the renewal happens before the outage.
const certExpiryWarning = 30 * 24 * time.Hour

// warnf records something that is allowed but unsafe; the agent logs it at
// every start and check prints it.
func (v *validator) warnf(line int, where, format string, args ...any) {
	v.warnings = append(v.warnings, Problem{Line: line, Msg: prefix(where) + fmt.Sprintf(format, args...)})
}

// httpAccess checks the local endpoint's token. /metrics and /status tell
// an attacker on the plant network what the line does, so a listener that
// is not loopback must ask for a token: refusing to start is better than
// serving them to everyone because one key was forgotten.
func (v *validator) httpAccess() {
	h := &v.cfg.HTTP
	n := v.nodes.section("http")
	if h.Token != "" && h.TokenFile != "" {
		v.addf(keyLine(n, "token_file"), "http", "token and token_file are exclusive")
	}
	if h.TokenFile != "" {
		h.TokenFile = v.resolve(h.TokenFile)
		if s, err := readSecretFile("token_file", h.TokenFile); err != nil {
			v.addf(keyLine(n, "token_file"), "http", "%v", err)
		} else {
			h.Token = s
		}
	}
	l := h.ListenAddr()
	if l == "" {
		return
	}
	if h.Token == "" && !IsLoopback(l) {
		v.addf(keyLine(n, "listen"), "http", "listen %q is not a loopback address: set token or token_file (clients then send \"Authorization: Bearer <token>\"), or listen on 127.0.0.1", l)
	}
	if h.Token != "" && len(h.Token) < MinTokenLength {
		v.warnf(keyLine(n, "token"), "http", "the token is shorter than %d characters: easy to guess", MinTokenLength)
	}
}

// IsLoopback tells whether a host:port listens only on the loopback
// interface. An empty host or a name other than localhost counts as not
// loopback: it may resolve to, or bind, every interface.
func IsLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// secretFiles warns about key and password files that every user of the
// machine may read, and about client certificates that expired or soon
// will. They are warnings, not errors: the agent still runs (and buffers),
// and the log says what to fix.
func (v *validator) secretFiles() {
	u := v.cfg.Uplink
	un := v.nodes.section("uplink")
	tn := valueOf(un, "tls")
	v.checkPrivate(u.PasswordFile, keyLine(un, "password_file"), "uplink", "password_file")
	v.checkPrivate(u.TLS.KeyFile, keyLine(tn, "key_file"), "uplink", "tls key_file")
	v.checkCertExpiry(u.TLS.CertFile, keyLine(tn, "cert_file"), "uplink", "tls cert_file")
	v.checkPrivate(v.cfg.HTTP.TokenFile, keyLine(v.nodes.section("http"), "token_file"), "http", "token_file")
	for i, d := range v.cfg.Devices {
		if d.Auth == nil {
			continue
		}
		an := valueOf(v.nodes.device(i), "auth")
		where := "device " + d.Name
		v.checkPrivate(d.Auth.PasswordFile, keyLine(an, "password_file"), where, "auth password_file")
		v.checkPrivate(d.Auth.KeyFile, keyLine(an, "key_file"), where, "auth key_file")
	}
}

// checkPrivate warns when a secret file is open to other users (any of the
// "other" permission bits). Windows has no such bits; ACLs there are out of
// reach of os.FileMode.
func (v *validator) checkPrivate(path string, line int, where, key string) {
	if path == "" || runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		return // a missing file is reported where it is read
	}
	if perm := fi.Mode().Perm(); perm&0o007 != 0 {
		v.warnf(line, where, "%s %s is readable by every user of this machine (mode %04o): chmod 600 it (or 640 with a group the service runs as)", key, path, perm)
	}
}

// checkCertExpiry warns about an expired or soon expiring certificate: the
// broker refuses an expired one with no more than "bad certificate".
func (v *validator) checkCertExpiry(path string, line int, where, key string) {
	if path == "" {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		v.addf(line, where, "%s: %v", key, err)
		return
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return // the TLS setup reports it with its own words
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return
	}
	now := time.Now()
	switch {
	case now.After(c.NotAfter):
		v.warnf(line, where, "%s %s expired on %s: the broker will refuse it", key, path, c.NotAfter.UTC().Format(time.DateOnly))
	case now.Before(c.NotBefore):
		v.warnf(line, where, "%s %s is not valid before %s (is the clock right?)", key, path, c.NotBefore.UTC().Format(time.RFC3339))
	case c.NotAfter.Sub(now) < certExpiryWarning:
		v.warnf(line, where, "%s %s expires on %s", key, path, c.NotAfter.UTC().Format(time.DateOnly))
	}
}

// readSecretFile reads a one-line secret (password, token) from a file;
// the trailing newline an editor adds is not part of it.
func readSecretFile(key, path string) (Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s %s is empty", key, path)
	}
	return Secret(s), nil
}

// warningLines formats warnings as "linegate.yaml:12: msg", like Error.
func warningLines(file string, ws []Problem) []string {
	if len(ws) == 0 {
		return nil
	}
	lines := make([]string, len(ws))
	for i, w := range ws {
		lines[i] = (&Error{File: file, Problems: []Problem{w}}).Error()
	}
	return lines
}

// RedactURL hides the password of a URL ("tcp://gw:xxxxx@host:1883"), for
// messages and output. Text that does not parse but holds an "@" is hidden
// whole: it may be a URL with a password that failed to parse.
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return "<invalid URL with credentials>"
		}
		return s
	}
	return u.Redacted()
}
