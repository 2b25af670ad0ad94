package configs

import (
	"strings"
	"testing"
)

// The config takes the broker spellings "mqtt check" takes.
func TestBrokerSpellings(t *testing.T) {
	tests := []struct{ in, want string }{
		{"127.0.0.1:1884", "tcp://127.0.0.1:1884"},
		{"mqtt://127.0.0.1:1884", "tcp://127.0.0.1:1884"},
		{"MQTT://127.0.0.1:1884", "tcp://127.0.0.1:1884"},
		{"mqtts://broker:8883", "ssl://broker:8883"},
		{"tls://broker:8883", "ssl://broker:8883"},
		{"tcp://127.0.0.1:1884", "tcp://127.0.0.1:1884"},
		{"wss://broker/mqtt", "wss://broker/mqtt"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			text := strings.Replace(base, "tcp://127.0.0.1:1884", tt.in, 1)
			cfg, err := Parse("linegate.yaml", []byte(text), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Uplink.Brokers[0]; got != tt.want {
				t.Errorf("broker %q: got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
