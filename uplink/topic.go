package uplink

import (
	"strings"
	"unicode/utf8"
)

// Topic is the data topic <prefix>/<site>/<area>/<line>/<equipment>/<class>.
//
// A broker disconnects a client that publishes to a topic with a wildcard, a
// NUL or invalid UTF-8, and the uplink would then resend the same message
// forever; so such characters become "_" (and "/" too, except in the prefix,
// which may name several levels).
func Topic(prefix, site, area, line, equipment, class string) string {
	return joinTopic(prefix, site, area, line, equipment, class)
}

// gatewayTopic is <prefix>/<site>/<area>/<line>/_gateway/<id>/<leaf>.
func gatewayTopic(prefix string, gw Gateway, leaf string) string {
	return joinTopic(prefix, gw.Site, gw.Area, gw.Line, "_gateway", gw.ID, leaf)
}

func joinTopic(prefix string, levels ...string) string {
	n := len(prefix)
	for _, l := range levels {
		n += 1 + len(l)
	}
	var b strings.Builder
	b.Grow(n)
	writeLevel(&b, prefix, true)
	for _, l := range levels {
		b.WriteByte('/')
		writeLevel(&b, l, false)
	}
	return b.String()
}

func writeLevel(b *strings.Builder, s string, slashOK bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == '+' || c == '#' || c == 0 || (c == '/' && !slashOK) {
				c = '_'
			}
			b.WriteByte(c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteByte('_')
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
}

// validPrefix reports whether a topic prefix can be used as is.
func validPrefix(p string) bool {
	return p != "" && utf8.ValidString(p) && !strings.ContainsAny(p, "+#\x00")
}
