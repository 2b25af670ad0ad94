package opcua

import (
	"context"
	"crypto/x509"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// Endpoint is one endpoint a server offers, for `linegate opcua endpoints`.
type Endpoint struct {
	URL        string   `json:"url"`
	Policy     string   `json:"security_policy"`
	Mode       string   `json:"security_mode"`
	Level      int      `json:"security_level"`
	Logins     []string `json:"logins"`
	Thumbprint string   `json:"certificate_thumbprint,omitempty"`
	Subject    string   `json:"certificate_subject,omitempty"`
	Supported  bool     `json:"supported"` // linegate knows the policy
}

// GetEndpoints asks a server for its endpoints (over an unsecured
// discovery channel, as OPC UA allows).
func GetEndpoints(ctx context.Context, endpoint string) ([]Endpoint, error) {
	eps, err := opcua.GetEndpoints(ctx, endpoint)
	if err != nil {
		return nil, fmt.Errorf("%s: get endpoints: %w", endpoint, describe(err))
	}
	out := make([]Endpoint, 0, len(eps))
	for _, ep := range eps {
		e := Endpoint{URL: ep.EndpointURL, Policy: PolicyName(ep.SecurityPolicyURI), Mode: ModeName(ep.SecurityMode),
			Level: int(ep.SecurityLevel), Supported: policyRank(ep.SecurityPolicyURI) >= 0}
		for _, t := range ep.UserIdentityTokens {
			if n := tokenName(t.TokenType); !slices.Contains(e.Logins, n) {
				e.Logins = append(e.Logins, n)
			}
		}
		if len(ep.ServerCertificate) > 0 {
			e.Thumbprint = Thumbprint(ep.ServerCertificate)
			if c, err := x509.ParseCertificate(ep.ServerCertificate); err == nil {
				e.Subject = c.Subject.String()
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// Security is the policy and mode of the current session ("" when none).
func (d *Driver) Security() (policy, mode string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sess == nil {
		return "", ""
	}
	return PolicyName(d.sess.ep.SecurityPolicyURI), ModeName(d.sess.ep.SecurityMode)
}

// Browse walks the address space from node (a node id or a browse path;
// "" = the Objects folder) down depth levels, calling visit for each
// reference found, depth first.
func (d *Driver) Browse(ctx context.Context, node string, depth int, visit func(Ref)) error {
	s, err := d.ensure(ctx)
	if err != nil {
		return err
	}
	b := &browser{c: s.c, timeout: func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, d.cfg.Timeout) }}
	start := ua.NewNumericNodeID(0, id.ObjectsFolder)
	if node != "" {
		if isNodeID(node) {
			start, _ = ua.ParseNodeID(node)
		} else {
			p, perr := parsePath(node)
			if perr != nil {
				return fmt.Errorf("%q is neither a node id nor a browse path: %w", node, perr)
			}
			b.cache = map[string][]Ref{}
			if start, err = b.resolve(ctx, p); err != nil {
				return err
			}
			b.cache = nil
		}
	}
	if err := b.walk(ctx, start, max(depth, 1), visit); err != nil {
		return fmt.Errorf("browse %s: %w", start, describe(err))
	}
	return nil
}

// SourceTag makes the tag for a node given on the command line: a node id
// if it parses as one, else a browse path.
func SourceTag(name, node string) Tag {
	if isNodeID(node) {
		return Tag{Name: name, Node: node}
	}
	return Tag{Name: name, BrowsePath: node}
}

// nodeIDText is the text form of a node id; gopcua's parser also takes a
// bare name as a string id in namespace 0, which a browse path would be.
var nodeIDText = regexp.MustCompile(`^(?:(?:ns=\d+|nsu=[^;]+);)?[isgb]=`)

func isNodeID(s string) bool {
	if !nodeIDText.MatchString(s) {
		return false
	}
	if strings.HasPrefix(s, "nsu=") {
		_, _, err := parseNSU(s)
		return err == nil
	}
	_, err := ua.ParseNodeID(s)
	return err == nil
}
