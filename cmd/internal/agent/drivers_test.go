package agent

import (
	"math"
	"testing"

	"github.com/linegate/linegate/configs"
)

func TestServerDeadband(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name string
		tag  configs.Tag
		want float64
	}{
		{"none", configs.Tag{Scale: f(100)}, 0},
		{"raw units", configs.Tag{Deadband: 1}, 0.5},
		{"scale 100", configs.Tag{Deadband: 1, Scale: f(100)}, 0.005},
		{"negative scale", configs.Tag{Deadband: 1, Scale: f(-0.1)}, 5},
		{"raw_range to range", configs.Tag{Deadband: 1, RawRange: []float64{0, 27648}, Range: []float64{0, 100}}, 138.24},
		{"ms published as s", configs.Tag{Deadband: 0.5, Class: "time", Unit: "ms"}, 250},
		{"empty raw range", configs.Tag{Deadband: 1, RawRange: []float64{5, 5}, Range: []float64{0, 100}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := serverDeadband(tc.tag); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("serverDeadband = %v, want %v", got, tc.want)
			}
		})
	}
}
