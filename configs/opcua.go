package configs

import (
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// DefaultMaxClockSkew is an OPC UA device's max_clock_skew.
const DefaultMaxClockSkew = Duration(5 * time.Second)

// nodeIDPattern is the text form of an OPC UA node id (Part 6, 5.3.1.10):
// ns=<index>; or nsu=<uri>; then i=, s=, g= or b=.
var nodeIDPattern = regexp.MustCompile(`^(?:(?:ns=\d{1,5}|nsu=[^;]+);)?(?:i=\d{1,10}|s=.+|g=[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|b=[A-Za-z0-9+/=]+)$`)

// IsNodeID says whether s is the text form of an OPC UA node id, as the
// node key takes it.
func IsNodeID(s string) bool { return nodeIDPattern.MatchString(s) }

// opcuaSource checks a tag's node or browse_path.
func (v *validator) opcuaSource(t *Tag, n *yaml.Node, where string) {
	switch {
	case t.Node != "" && t.BrowsePath != "":
		v.addf(keyLine(n, "browse_path"), where, "node and browse_path are exclusive")
	case t.Node == "" && t.BrowsePath == "":
		v.addf(n.Line, where, "node or browse_path is required (node: \"ns=2;s=Oven02.Zone1.Temp\", browse_path: Objects/Line1/Oven02/Temp)")
	case t.Node != "" && !nodeIDPattern.MatchString(t.Node):
		v.addf(keyLine(n, "node"), where, "node %q is not a node id (ns=2;s=Name, ns=3;i=1001, i=2258, ns=1;g=<guid>, ns=1;b=<base64>)", t.Node)
	case t.BrowsePath != "":
		parts := strings.Split(strings.Trim(t.BrowsePath, "/"), "/")
		if parts[0] == "Objects" || parts[0] == "0:Objects" {
			parts = parts[1:]
		}
		if len(parts) == 0 {
			v.addf(keyLine(n, "browse_path"), where, "browse_path %q names no node below Objects", t.BrowsePath)
			return
		}
		for _, p := range parts {
			if _, name, _ := strings.Cut(p, ":"); p == "" || strings.HasSuffix(p, ":") && name == "" {
				v.addf(keyLine(n, "browse_path"), where, "browse_path %q has an empty element", t.BrowsePath)
				return
			}
		}
	}
}

// opcuaAuth checks the user login: username + password (or password_file),
// or an X.509 user certificate; none = anonymous.
func (v *validator) opcuaAuth(d *Device, n *yaml.Node, where string) {
	a := d.Auth
	if a == nil {
		return
	}
	an := valueOf(n, "auth")
	cert := a.CertFile != "" || a.KeyFile != ""
	switch {
	case a.Username == "" && !cert:
		v.addf(keyLine(an, "username"), where, "auth: username (or cert_file and key_file) is required (omit auth for anonymous)")
	case a.Username != "" && cert:
		v.addf(keyLine(an, "cert_file"), where, "auth: username and cert_file are exclusive")
	case cert && (a.CertFile == "" || a.KeyFile == ""):
		v.addf(keyLine(an, "cert_file"), where, "auth: cert_file and key_file go together")
	}
	if cert && (a.Password != "" || a.PasswordFile != "") {
		v.addf(keyLine(an, "password"), where, "auth: a certificate login takes no password")
	}
	if a.Password != "" && a.PasswordFile != "" {
		v.addf(keyLine(an, "password_file"), where, "auth: password and password_file are exclusive")
	}
	if a.PasswordFile != "" {
		a.PasswordFile = v.resolve(a.PasswordFile)
		if p, err := readSecret(a.PasswordFile); err != nil {
			v.addf(keyLine(an, "password_file"), where, "auth: %v", err)
		} else {
			a.Password = p
		}
	}
	for _, f := range []struct {
		key  string
		path *string
	}{{"cert_file", &a.CertFile}, {"key_file", &a.KeyFile}} {
		if *f.path == "" {
			continue
		}
		*f.path = v.resolve(*f.path)
		if _, err := os.Stat(*f.path); err != nil {
			v.addf(keyLine(an, f.key), where, "auth: %s: %v", f.key, err)
		}
	}
}
