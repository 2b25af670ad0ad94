package uplink

import (
	"testing"
	"time"
)

func TestTopic(t *testing.T) {
	tests := []struct {
		name                                       string
		prefix, site, area, line, equipment, class string
		want                                       string
	}{
		{"contract example", "linegate", "plant-a", "assembly", "line1", "press01", "process",
			"linegate/plant-a/assembly/line1/press01/process"},
		{"prefix may have levels", "acme/mes", "s", "a", "l", "e", "time", "acme/mes/s/a/l/e/time"},
		{"wildcards and slash in a level", "p+#", "s/1", "a+", "l#", "e\x00", "c", "p__/s_1/a_/l_/e_/c"},
		{"invalid UTF-8", "p", "s\xff", "ä", "l", "e", "c", "p/s_/ä/l/e/c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Topic(tt.prefix, tt.site, tt.area, tt.line, tt.equipment, tt.class); got != tt.want {
				t.Errorf("Topic = %q, want %q", got, tt.want)
			}
		})
	}
	if got := gatewayTopic("linegate", testGW, "status"); got != statusTopic {
		t.Errorf("status topic %q", got)
	}
	if got := gatewayTopic("linegate", testGW, "events"); got != eventsTopic {
		t.Errorf("events topic %q", got)
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: time.Second, max: 10 * time.Second}
	// Each delay is the step's value less up to 20% jitter.
	for i, step := range []time.Duration{1, 2, 4, 8, 10, 10, 10} {
		step *= time.Second
		if d := b.next(); d > step || d < step*4/5 {
			t.Errorf("attempt %d: %v, want %v less up to 20%%", i, d, step)
		}
	}
	b.reset()
	if d := b.next(); d > time.Second || d < 800*time.Millisecond {
		t.Errorf("after reset: %v", d)
	}
}
