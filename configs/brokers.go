package configs

import "strings"

// brokerSpelling maps the other ways people write a broker address to the
// scheme linegate (and paho) dials: "mqtt check" and the config accept the
// same forms, so what a technician tried on the command line pastes as is.
var brokerSpelling = map[string]string{"mqtt": "tcp", "mqtts": "ssl", "tls": "ssl"}

// NormalizeBroker returns s as a URL with one of the schemes tcp, ssl, ws,
// wss: host:port becomes tcp://host:port, mqtt:// becomes tcp:// and
// mqtts:// (or tls://) becomes ssl://. Anything else is returned unchanged,
// for the validator to report.
func NormalizeBroker(s string) string {
	s = strings.TrimSpace(s)
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		if s == "" {
			return s
		}
		return "tcp://" + s
	}
	if to, ok := brokerSpelling[strings.ToLower(scheme)]; ok {
		return to + "://" + rest
	}
	return s
}
