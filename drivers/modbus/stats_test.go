package modbus

import (
	"math"
	"testing"
	"time"
)

func TestMeterRate(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		age  time.Duration // of the meter at now
		adds []time.Duration
		want float64
	}{
		{"empty", time.Minute, nil, 0},
		{"one a second, young meter", 10 * time.Second, []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 1},
		{"two in a minute", 2 * time.Minute, []time.Duration{70, 100}, 2.0 / 60},
		{"older than the window", 5 * time.Minute, []time.Duration{10, 20}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := t0.Add(tt.age)
			m := &meter{created: t0}
			for _, s := range tt.adds {
				m.add(t0.Add(s*time.Second-time.Millisecond), 1)
			}
			if got := m.rate(now); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("rate %v, want %v", got, tt.want)
			}
		})
	}
}
