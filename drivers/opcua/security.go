package opcua

import (
	"cmp"
	"fmt"
	"sort"
	"strings"

	"github.com/gopcua/opcua/ua"
)

func policyURI(name string) string {
	for _, p := range Policies {
		if p == name {
			return ua.SecurityPolicyURIPrefix + p
		}
	}
	return ""
}

// PolicyName is the short name of a security policy URI.
func PolicyName(uri string) string { return strings.TrimPrefix(uri, ua.SecurityPolicyURIPrefix) }

func policyRank(uri string) int {
	name := PolicyName(uri)
	for i, p := range Policies {
		if p == name {
			return i
		}
	}
	return -1 // a policy gopcua does not know
}

func modeOf(name string) (ua.MessageSecurityMode, bool) {
	switch name {
	case "None":
		return ua.MessageSecurityModeNone, true
	case "Sign":
		return ua.MessageSecurityModeSign, true
	case "SignAndEncrypt":
		return ua.MessageSecurityModeSignAndEncrypt, true
	}
	return ua.MessageSecurityModeInvalid, false
}

// ModeName is the short name of a message security mode.
func ModeName(m ua.MessageSecurityMode) string {
	switch m {
	case ua.MessageSecurityModeNone:
		return "None"
	case ua.MessageSecurityModeSign:
		return "Sign"
	case ua.MessageSecurityModeSignAndEncrypt:
		return "SignAndEncrypt"
	}
	return "Invalid"
}

// strength orders endpoints for security_policy auto: the policy first,
// then SignAndEncrypt over Sign, then the server's own security level.
func strength(ep *ua.EndpointDescription) int {
	s := policyRank(ep.SecurityPolicyURI) * 1000
	if ep.SecurityMode == ua.MessageSecurityModeSignAndEncrypt {
		s += 500
	}
	return s + int(ep.SecurityLevel)
}

func hasToken(ep *ua.EndpointDescription, tt ua.UserTokenType) bool {
	for _, t := range ep.UserIdentityTokens {
		if t.TokenType == tt {
			return true
		}
	}
	return false
}

// plainToken tells whether a username token of ep would carry the password
// readable on the wire: no encryption of its own (policy None, or none
// and the endpoint's None) on a channel that does not encrypt.
func plainToken(ep *ua.EndpointDescription, t *ua.UserTokenPolicy) bool {
	p := t.SecurityPolicyURI
	if p == "" {
		p = ep.SecurityPolicyURI
	}
	return PolicyName(p) == "None" && ep.SecurityMode != ua.MessageSecurityModeSignAndEncrypt
}

// userToken picks ep's username token: the strongest one that encrypts the
// password, else (allowPlain only) one that does not. gopcua uses the first
// token of the type, so the endpoint is handed on with this one first.
func userToken(ep *ua.EndpointDescription, allowPlain bool) (*ua.EndpointDescription, error) {
	var best, plain *ua.UserTokenPolicy
	for _, t := range ep.UserIdentityTokens {
		if t == nil || t.TokenType != ua.UserTokenTypeUserName {
			continue
		}
		switch {
		case plainToken(ep, t):
			if plain == nil {
				plain = t
			}
		case t.SecurityPolicyURI == "" || policyRank(t.SecurityPolicyURI) >= 0:
			if best == nil || policyRank(t.SecurityPolicyURI) > policyRank(best.SecurityPolicyURI) {
				best = t
			}
		}
	}
	if best == nil && plain != nil {
		if !allowPlain {
			return nil, fmt.Errorf("endpoint %s/%s would send the password unencrypted (its username token %q has security policy None): "+
				"use a secure endpoint (security_policy: Basic256Sha256) or, on a network you trust, allow_plain_password: true",
				PolicyName(ep.SecurityPolicyURI), ModeName(ep.SecurityMode), plain.PolicyID)
		}
		best = plain
	}
	if best == nil {
		return ep, nil // no username token: the caller's selection said why
	}
	c := *ep
	c.UserIdentityTokens = append([]*ua.UserTokenPolicy{best}, ep.UserIdentityTokens...)
	return &c, nil
}

// selectEndpoint picks the endpoint for policy/mode ("auto": the strongest
// one that accepts the user token type; for a password, one that encrypts
// it unless allowPlain).
func selectEndpoint(eps []*ua.EndpointDescription, policy, mode string, tt ua.UserTokenType, allowPlain bool) (*ua.EndpointDescription, error) {
	var cands []*ua.EndpointDescription
	for _, ep := range eps {
		if policyRank(ep.SecurityPolicyURI) < 0 || ep.SecurityMode == ua.MessageSecurityModeInvalid {
			continue
		}
		if policy != "auto" {
			m, _ := modeOf(mode)
			if ep.SecurityPolicyURI != policyURI(policy) || ep.SecurityMode != m {
				continue
			}
		}
		cands = append(cands, ep)
	}
	sort.SliceStable(cands, func(i, j int) bool { return strength(cands[i]) > strength(cands[j]) })
	var plainErr error
	for _, ep := range cands {
		if !hasToken(ep, tt) {
			continue
		}
		if tt != ua.UserTokenTypeUserName {
			return ep, nil
		}
		uep, err := userToken(ep, allowPlain)
		if err == nil {
			return uep, nil
		}
		plainErr = cmp.Or(plainErr, err)
	}
	if plainErr != nil {
		return nil, plainErr
	}
	want := policy + "/" + mode
	if policy == "auto" {
		want = "any known policy"
	}
	if len(cands) > 0 {
		return nil, fmt.Errorf("no endpoint with %s accepts %s login (server offers %s)", want, tokenName(tt), offered(eps))
	}
	return nil, fmt.Errorf("server offers no endpoint with %s (it offers %s)", want, offered(eps))
}

func offered(eps []*ua.EndpointDescription) string {
	var s []string
	for _, ep := range eps {
		var toks []string
		for _, t := range ep.UserIdentityTokens {
			toks = append(toks, tokenName(t.TokenType))
		}
		s = append(s, fmt.Sprintf("%s/%s [%s]", PolicyName(ep.SecurityPolicyURI), ModeName(ep.SecurityMode), strings.Join(toks, ",")))
	}
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, ", ")
}

func tokenName(t ua.UserTokenType) string {
	switch t {
	case ua.UserTokenTypeAnonymous:
		return "anonymous"
	case ua.UserTokenTypeUserName:
		return "username"
	case ua.UserTokenTypeCertificate:
		return "certificate"
	case ua.UserTokenTypeIssuedToken:
		return "issued-token"
	}
	return "unknown"
}
