package configs

import (
	"math"
	"testing"
)

func TestServerDeadband(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	for _, tc := range []struct {
		name string
		tag  Tag
		want float64
	}{
		{"none", Tag{Scale: f(100)}, 0},
		{"raw units", Tag{Deadband: 1}, 0.5},
		{"scale 100", Tag{Deadband: 1, Scale: f(100)}, 0.005},
		{"negative scale", Tag{Deadband: 1, Scale: f(-0.1)}, 5},
		{"raw_range to range", Tag{Deadband: 1, RawRange: []float64{0, 27648}, Range: []float64{0, 100}}, 138.24},
		{"ms published as s", Tag{Deadband: 0.5, Class: "time", Unit: "ms"}, 250},
		{"ms timestamp stays raw", Tag{Deadband: 0.5, Class: "time", Unit: "ms", Timestamp: "unix_ms"}, 0.25},
		{"empty raw range", Tag{Deadband: 1, RawRange: []float64{5, 5}, Range: []float64{0, 100}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.tag.ServerDeadband(); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("ServerDeadband = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEffectiveValues(t *testing.T) {
	i := func(v int) *int { return &v }
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"max_gap default", Device{}.ModbusMaxGap(), DefaultMaxGap},
		{"max_gap 5", Device{MaxGap: i(5)}.ModbusMaxGap(), 5},
		{"max_gap 0 never bridges", Device{MaxGap: i(0)}.ModbusMaxGap(), -1},
		{"subscribe", Device{Driver: "opcua", Mode: "subscribe"}.Subscribes(), true},
		{"poll", Device{Driver: "opcua", Mode: "poll"}.Subscribes(), false},
		{"modbus never subscribes", Device{Driver: "modbus", Mode: "subscribe"}.Subscribes(), false},
		{"queue size", Device{QueueSize: 10}.QueueSizeValue(), uint32(10)},
		{"negative queue size", Device{QueueSize: -1}.QueueSizeValue(), uint32(0)},
		{"uint16 counter", Tag{Type: "uint16"}.CounterBits("modbus"), 16},
		{"uint32 counter", Tag{Type: "uint32"}.CounterBits("modbus"), 32},
		{"opcua counter", Tag{Type: "uint16"}.CounterBits("opcua"), 64},
		{"ms duration", Tag{Class: "time", Unit: "ms"}.SecondsFactor(), 1e-3},
		{"h duration", Tag{Class: "time", Unit: "h"}.SecondsFactor(), 3600.0},
		{"timestamp", Tag{Class: "time", Unit: "ms", Timestamp: "unix_ms"}.SecondsFactor(), 0.0},
		{"process ms", Tag{Class: "process", Unit: "ms"}.SecondsFactor(), 0.0},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if _, _, _, _, ok := (Tag{RawRange: []float64{0, 1}}).LinearMap(); ok {
		t.Error("raw_range without range is a map")
	}
	if a, b, c, d, ok := (Tag{RawRange: []float64{0, 27648}, Range: []float64{0, 100}}).LinearMap(); !ok || a != 0 || b != 27648 || c != 0 || d != 100 {
		t.Errorf("LinearMap = %v %v %v %v %v", a, b, c, d, ok)
	}
}
