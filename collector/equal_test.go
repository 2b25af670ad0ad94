package collector

import (
	"math"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/drivers"
)

func TestSameValue(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		a, b any
		want bool
	}{
		{"nil", nil, nil, true},
		{"nil and zero", nil, int64(0), false},
		{"bool", true, true, true},
		{"bool differs", true, false, false},
		{"int64", int64(7), int64(7), true},
		{"int64 and uint64", int64(7), uint64(7), false},
		{"uint64", uint64(1 << 63), uint64(1 << 63), true},
		{"float64", 23.5, 23.5, true},
		{"float64 differs", 23.5, 23.6, false},
		{"NaN", nan, nan, true},
		{"string", "running", "running", true},
		{"string differs", "running", "idle", false},
		{"array", []any{1.0, 2.0, 3.0}, []any{1.0, 2.0, 3.0}, true},
		{"array element", []any{1.0, 2.0, 3.0}, []any{1.0, 2.5, 3.0}, false},
		{"array length", []any{1.0, 2.0}, []any{1.0, 2.0, 3.0}, false},
		{"empty arrays", []any{}, []any{}, true},
		{"nested", []any{[]any{int64(1)}, "x"}, []any{[]any{int64(1)}, "x"}, true},
		{"nested differs", []any{[]any{int64(1)}}, []any{[]any{int64(2)}}, false},
		{"array and scalar", []any{1.0}, 1.0, false},
		{"unknown type", []int{1}, []int{1}, false},
		{"map", map[string]any{}, map[string]any{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameValue(tt.a, tt.b); got != tt.want {
				t.Errorf("sameValue(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
			}
			if got := sameValue(tt.b, tt.a); got != tt.want {
				t.Errorf("sameValue(%v, %v) = %v, want %v (reversed)", tt.b, tt.a, got, tt.want)
			}
		})
	}
}

// TestUnchangedArrayHeldBack is the crash loop of an OPC UA array tag (the
// demo's zone temperatures) under report_every or a deadband: the second,
// unchanged cycle compared two []any with == and panicked.
func TestUnchangedArrayHeldBack(t *testing.T) {
	tests := []struct {
		name string
		tag  Tag
	}{
		{"report_every", Tag{Name: "zones", Class: "process", ReportEvery: time.Minute}},
		{"deadband", Tag{Name: "zones", Class: "process", Deadband: 0.5}},
		{"state with attrs", Tag{Name: "zones", Class: "equipment", States: map[int64]string{1: "run"}, ReportEvery: time.Minute}},
		{"alarms", Tag{Name: "zones", Class: "equipment", Alarms: []Alarm{{Bit: 0, Text: "a"}}, ReportEvery: time.Minute}},
		{"counter", Tag{Name: "zones", Class: "equipment", Counter: true, ReportEvery: time.Minute}},
	}
	values := []any{
		[]any{180.5, 181.0, 179.5},
		[]any{[]any{int64(1), int64(2)}, []any{int64(3), int64(4)}},
		[]any{"a", true, nil, uint64(3)},
		[]any{},
	}
	for _, tt := range tests {
		for _, v := range values {
			t.Run(tt.name, func(t *testing.T) {
				var st tagState
				if _, ok := tt.tag.normalize(good(v), &st, t0); !ok {
					t.Fatal("first reading held back")
				}
				r, ok := tt.tag.normalize(good(v), &st, t0.Add(time.Second))
				if ok && r.Quality == buffer.Good {
					t.Fatalf("unchanged %v reported again within report_every: %+v", v, r)
				}
				// A changed array is reported.
				changed := append([]any{"changed"}, v.([]any)...)
				if _, ok := tt.tag.normalize(drivers.Sample{Value: changed}, &st, t0.Add(2*time.Second)); !ok {
					t.Fatalf("changed array %v held back", changed)
				}
			})
		}
	}
}

func TestFiniteArray(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	tests := []struct {
		name   string
		in     []any
		want   []any
		reason string
	}{
		{"finite", []any{1.0, "a", nil}, []any{1.0, "a", nil}, ""},
		{"NaN", []any{1.0, nan, 3.0}, []any{1.0, nil, 3.0}, "element 1 is NaN"},
		{"Inf first of two", []any{inf, nan}, []any{nil, nil}, "element 0 is +Inf"},
		{"nested", []any{[]any{1.0, -inf}, 2.0}, []any{[]any{1.0, nil}, 2.0}, "element 0: element 1 is -Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := append([]any(nil), tt.in...)
			got, reason := finiteArray(tt.in)
			if !sameValue(got, tt.want) || reason != tt.reason {
				t.Fatalf("finiteArray(%v) = %v, %q; want %v, %q", tt.in, got, reason, tt.want, tt.reason)
			}
			if reason != "" && !sameValue(orig, tt.in) {
				t.Fatal("the driver's array was modified")
			}
		})
	}
	// Through normalize: the reading is uncertain with the reason.
	tag := Tag{Name: "zones", Class: "process"}
	var st tagState
	r, _ := tag.normalize(good([]any{180.0, nan}), &st, t0)
	if r.Quality != buffer.Uncertain || r.Error != "element 1 is NaN" || !sameValue(r.Value, []any{180.0, nil}) {
		t.Fatalf("reading %+v", r)
	}
}
