package configs

import (
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// sparkplug checks uplink.group_id, uplink.edge_node and
// uplink.primary_host and fills the defaults when the format is sparkplugb
// (qos 0, as Sparkplug requires): the group is <site>_<line> (empty
// parts left out; "linegate" when both are), the edge node the gateway id,
// with / + # and NUL made "_" (uplink.DefaultGroupID does the same).
func (v *validator) sparkplug(n *yaml.Node) {
	u := &v.cfg.Uplink
	if u.Format != "sparkplugb" {
		for _, k := range [][2]string{{"group_id", u.GroupID}, {"edge_node", u.EdgeNode}, {"primary_host", u.PrimaryHost}} {
			if k[1] != "" {
				v.addf(keyLine(n, k[0]), "uplink", "%s applies only to format: sparkplugb", k[0])
			}
		}
		return
	}
	for _, f := range []struct {
		key string
		val *string
	}{{"group_id", &u.GroupID}, {"edge_node", &u.EdgeNode}, {"primary_host", &u.PrimaryHost}} {
		if *f.val != "" && !validSparkplugID(*f.val) {
			v.addf(keyLine(n, f.key), "uplink", "%s %q must not hold / + # or NUL (it is a Sparkplug topic level)", f.key, *f.val)
		}
	}
	if u.QoS == nil {
		// Sparkplug requires QoS 0 for data; qos: 1 is the lossless
		// deviation (uplink README, "QoS").
		zero := 0
		u.QoS = &zero
	}
	if u.GroupID == "" {
		var parts []string
		for _, p := range []string{v.cfg.Gateway.Site, v.cfg.Gateway.Line} {
			if p != "" {
				parts = append(parts, sparkplugLevel(p))
			}
		}
		u.GroupID = strings.Join(parts, "_")
		if u.GroupID == "" {
			u.GroupID = "linegate"
		}
	}
	if u.EdgeNode == "" && v.cfg.Gateway.ID != "" {
		u.EdgeNode = sparkplugLevel(v.cfg.Gateway.ID)
	}
}

func validSparkplugID(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsAny(s, "/+#\x00")
}

// sparkplugLevel replaces what a Sparkplug id cannot hold by "_".
func sparkplugLevel(s string) string {
	s = strings.ToValidUTF8(s, "_")
	return strings.Map(func(r rune) rune {
		switch r {
		case '/', '+', '#', 0:
			return '_'
		}
		return r
	}, s)
}
