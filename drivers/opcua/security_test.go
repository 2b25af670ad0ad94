package opcua

import (
	"context"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopcua/opcua/ua"

	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/drivers/sim"
)

// TestSecurity connects with every policy and mode: the first attempt is
// refused because the server certificate is unknown (copied to rejected/,
// the error names the thumbprint and the trust command); once trusted, the
// read works.
func TestSecurity(t *testing.T) {
	o := startOven(t, sim.OvenOptions{Secure: true})
	pkiDir := t.TempDir()
	thumb := Thumbprint(o.Certificate())
	first := true
	for _, policy := range Policies[1:] {
		for _, mode := range []string{"Sign", "SignAndEncrypt"} {
			t.Run(policy+"/"+mode, func(t *testing.T) {
				tags := []Tag{{Name: "z1", Node: o.NodeID("Zone1.Temperature")}}
				d := newDriver(t, Config{Endpoint: o.Endpoint(), SecurityPolicy: policy, SecurityMode: mode, PKIDir: pkiDir, Tags: tags})
				out := make([]drivers.Sample, 1)
				if first {
					first = false
					err := d.Read(context.Background(), out)
					var ue *UntrustedError
					if !errors.As(err, &ue) || ue.Thumbprint != thumb {
						t.Fatalf("first read: %v, want an untrusted server certificate %s", err, thumb)
					}
					for _, want := range []string{thumb, "linegate opcua trust", "rejected"} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("error %q does not say %q", err, want)
						}
					}
					if _, err := os.Stat(filepath.Join(pkiDir, "rejected", thumb+".der")); err != nil {
						t.Fatalf("rejected copy: %v", err)
					}
					p, _ := OpenPKI(pkiDir)
					if _, err := p.Trust(thumb); err != nil {
						t.Fatalf("trust: %v", err)
					}
					d.nextDial = d.nextDial.AddDate(-1, 0, 0) // skip the backoff
				}
				if err := d.Read(context.Background(), out); err != nil {
					t.Fatal(err)
				}
				if out[0].Quality != drivers.Good {
					t.Fatalf("sample %v %v", out[0].Quality, out[0].Err)
				}
				s := d.sess
				if PolicyName(s.ep.SecurityPolicyURI) != policy || ModeName(s.ep.SecurityMode) != mode {
					t.Errorf("session on %s/%s", PolicyName(s.ep.SecurityPolicyURI), ModeName(s.ep.SecurityMode))
				}
			})
		}
	}
}

func TestSecurityAutoAndLogins(t *testing.T) {
	o := startOven(t, sim.OvenOptions{Secure: true})
	pkiDir := t.TempDir()
	p, _ := OpenPKI(pkiDir)
	if err := os.WriteFile(filepath.Join(pkiDir, "trusted", "oven.der"), o.Certificate(), 0o644); err != nil {
		t.Fatal(err)
	}
	// A user certificate for the X.509 login: any RSA certificate will do.
	userDir := t.TempDir()
	up, _ := OpenPKI(userDir)
	user, err := up.Own("urn:operator")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  Config
		tok  ua.UserTokenType
	}{
		{"auto anonymous", Config{SecurityPolicy: "auto"}, ua.UserTokenTypeAnonymous},
		{"auto username", Config{SecurityPolicy: "auto", Username: "op", Password: "secret"}, ua.UserTokenTypeUserName},
		{"basic256sha256 x509 user", Config{SecurityPolicy: "Basic256Sha256", UserCertFile: user.CertPath, UserKeyFile: user.KeyPath}, ua.UserTokenTypeCertificate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.cfg
			cfg.Endpoint, cfg.PKIDir = o.Endpoint(), p.Dir
			cfg.Tags = []Tag{{Name: "recipe", Node: o.NodeID("Recipe")}}
			d := newDriver(t, cfg)
			out := make([]drivers.Sample, 1)
			if err := d.Read(context.Background(), out); err != nil {
				t.Fatal(err)
			}
			if out[0].Value != "PCB-4711" {
				t.Fatalf("sample %v", out[0])
			}
			if c.cfg.SecurityPolicy == "auto" {
				if got := PolicyName(d.sess.ep.SecurityPolicyURI) + "/" + ModeName(d.sess.ep.SecurityMode); got != "Aes256_Sha256_RsaPss/SignAndEncrypt" {
					t.Errorf("auto chose %s, want the strongest", got)
				}
			}
		})
	}
}

func TestSelectEndpoint(t *testing.T) {
	ep := func(policy string, mode ua.MessageSecurityMode, level uint8, toks ...ua.UserTokenType) *ua.EndpointDescription {
		e := &ua.EndpointDescription{SecurityPolicyURI: ua.SecurityPolicyURIPrefix + policy, SecurityMode: mode, SecurityLevel: level}
		for _, tt := range toks {
			e.UserIdentityTokens = append(e.UserIdentityTokens, &ua.UserTokenPolicy{TokenType: tt})
		}
		return e
	}
	anon, user := ua.UserTokenTypeAnonymous, ua.UserTokenTypeUserName
	eps := []*ua.EndpointDescription{
		ep("None", ua.MessageSecurityModeNone, 0, anon),
		ep("Basic256Sha256", ua.MessageSecurityModeSign, 10, anon, user),
		ep("Basic256Sha256", ua.MessageSecurityModeSignAndEncrypt, 20, anon, user),
		ep("Basic128Rsa15", ua.MessageSecurityModeSignAndEncrypt, 99, anon, user),
		ep("Aes128_Sha256_RsaOaep", ua.MessageSecurityModeSignAndEncrypt, 30, anon),
	}
	cases := []struct {
		policy, mode string
		tt           ua.UserTokenType
		want         string // policy/mode, or error text
	}{
		{"auto", "", anon, "Aes128_Sha256_RsaOaep/SignAndEncrypt"},
		{"auto", "", user, "Basic256Sha256/SignAndEncrypt"},
		{"Basic256Sha256", "Sign", user, "Basic256Sha256/Sign"},
		{"None", "None", anon, "None/None"},
		{"None", "None", user, "accepts username login"},
		{"Aes256_Sha256_RsaPss", "SignAndEncrypt", anon, "server offers no endpoint with Aes256_Sha256_RsaPss/SignAndEncrypt"},
	}
	for _, c := range cases {
		got, err := selectEndpoint(eps, c.policy, c.mode, c.tt, false)
		var s string
		if err != nil {
			s = err.Error()
		} else {
			s = PolicyName(got.SecurityPolicyURI) + "/" + ModeName(got.SecurityMode)
		}
		if !strings.Contains(s, c.want) {
			t.Errorf("%s/%s %v: got %q, want %q", c.policy, c.mode, tokenName(c.tt), s, c.want)
		}
	}
}

func TestUserToken(t *testing.T) {
	tok := func(id, policy string) *ua.UserTokenPolicy {
		u := ""
		if policy != "" {
			u = ua.SecurityPolicyURIPrefix + policy
		}
		return &ua.UserTokenPolicy{PolicyID: id, TokenType: ua.UserTokenTypeUserName, SecurityPolicyURI: u}
	}
	ep := func(policy string, mode ua.MessageSecurityMode, toks ...*ua.UserTokenPolicy) *ua.EndpointDescription {
		return &ua.EndpointDescription{SecurityPolicyURI: ua.SecurityPolicyURIPrefix + policy, SecurityMode: mode, UserIdentityTokens: toks}
	}
	none, sign, enc := ua.MessageSecurityModeNone, ua.MessageSecurityModeSign, ua.MessageSecurityModeSignAndEncrypt
	for _, tc := range []struct {
		name  string
		ep    *ua.EndpointDescription
		allow bool
		want  string // the token's policy id, or error text
	}{
		{"encrypting before plain", ep("None", none, tok("plain", "None"), tok("b256", "Basic256Sha256")), false, "b256"},
		{"no policy on None is plain", ep("None", none, tok("plain", "")), false, "would send the password unencrypted"},
		{"plain allowed", ep("None", none, tok("plain", "")), true, "plain"},
		{"None token on Sign is plain", ep("Basic256Sha256", sign, tok("plain", "None")), false, "allow_plain_password: true"},
		{"None token on SignAndEncrypt: channel encrypts", ep("Basic256Sha256", enc, tok("t", "None")), false, "t"},
		{"no policy: the endpoint's", ep("Basic256Sha256", sign, tok("t", "")), false, "t"},
		{"strongest", ep("None", none, tok("b128", "Basic128Rsa15"), tok("aes", "Aes128_Sha256_RsaOaep")), false, "aes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := userToken(tc.ep, tc.allow)
			var s string
			if err != nil {
				s = err.Error()
			} else {
				s = got.UserIdentityTokens[0].PolicyID
			}
			if !strings.Contains(s, tc.want) {
				t.Errorf("got %q, want %q", s, tc.want)
			}
		})
	}
}

func TestPKI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	p, err := OpenPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	own, err := p.Own("urn:linegate:test-pc")
	if err != nil || !own.Created {
		t.Fatalf("own: %v %v", own, err)
	}
	for path, want := range map[string]os.FileMode{
		filepath.Join(dir, "own"): 0o700 | os.ModeDir, filepath.Join(dir, "trusted"): 0o700 | os.ModeDir,
		filepath.Join(dir, "rejected"): 0o700 | os.ModeDir, own.KeyPath: 0o600,
	} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v %v, want %v", path, fi.Mode(), err, want)
		}
	}
	c := own.Cert
	if own.URI != "urn:linegate:test-pc" || c.PublicKey.(interface{ Size() int }).Size() != 256 {
		t.Errorf("uri %q, key size", own.URI)
	}
	if len(c.IPAddresses) == 0 || !c.IPAddresses[0].Equal([]byte{127, 0, 0, 1}) || len(c.DNSNames) == 0 {
		t.Errorf("SANs: %v %v", c.DNSNames, c.IPAddresses)
	}
	if c.KeyUsage&x509.KeyUsageDataEncipherment == 0 {
		t.Error("no data encipherment usage")
	}
	// Loading again keeps the certificate, whatever URI is asked for.
	again, err := p.Own("urn:other")
	if err != nil || again.Created || again.URI != own.URI || !again.Cert.Equal(own.Cert) {
		t.Fatalf("reload: %v %v", again, err)
	}

	// Reject, then trust by thumbprint; trust a PEM file by path.
	server := again.DER
	if err := p.checkServer(server); err == nil {
		t.Fatal("unknown certificate accepted")
	}
	if _, err := p.Trust("00" + Thumbprint(server)[2:]); err == nil {
		t.Error("trusted an unknown thumbprint")
	}
	path, err := p.Trust(strings.ToLower(Thumbprint(server)))
	if err != nil || filepath.Dir(path) != filepath.Join(dir, "trusted") {
		t.Fatalf("trust: %v %v", path, err)
	}
	if err := p.checkServer(server); err != nil {
		t.Errorf("trusted certificate refused: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "rejected", Thumbprint(server)+".der")); !os.IsNotExist(err) {
		t.Errorf("rejected copy still there: %v", err)
	}
	other, _ := OpenPKI(t.TempDir())
	if _, err := other.Trust(own.CertPath); err != nil {
		t.Errorf("trust PEM file: %v", err)
	}
	if ok, _ := other.Trusted(server); !ok {
		t.Error("PEM-trusted certificate not trusted")
	}
	if _, err := other.Trust(own.KeyPath); err == nil {
		t.Error("trusted a key file")
	}
}
