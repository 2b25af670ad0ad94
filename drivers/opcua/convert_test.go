package opcua

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/linegate/linegate/drivers"
)

func TestValue(t *testing.T) {
	ts := time.Date(2026, 11, 27, 10, 15, 2, 123000000, time.FixedZone("CET", 3600))
	cases := []struct {
		in   any
		want any
	}{
		{true, true},
		{int8(-8), int64(-8)}, {int16(-16), int64(-16)}, {int32(-32), int64(-32)}, {int64(math.MinInt64), int64(math.MinInt64)},
		{uint8(8), uint64(8)}, {uint16(16), uint64(16)}, {uint32(32), uint64(32)}, {uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{float32(23.4), 23.4}, {2.5, 2.5},
		{"text", "text"},
		{ts, "2026-11-27T09:15:02.123Z"},
		{&ua.LocalizedText{Locale: "de", Text: "Automatik"}, "Automatik"},
		{&ua.QualifiedName{NamespaceIndex: 2, Name: "Q"}, "Q"},
		{ua.NewStringNodeID(2, "x"), "ns=2;s=x"},
		{[]byte{1, 2, 3}, "AQID"},
		{ua.StatusBadNodeIDUnknown, "BadNodeIdUnknown"},
		{[]float32{1.1, 2.2}, []any{1.1, 2.2}},
		{[]int32{1, -1}, []any{int64(1), int64(-1)}},
		{[]string{"a"}, []any{"a"}},
		{[]bool{}, []any{}},
	}
	for _, c := range cases {
		got, err := Value(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Value(%#v) = %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
	if _, err := Value(ua.NewExtensionObject(&ua.BuildInfo{})); err == nil {
		t.Error("ExtensionObject: no error")
	}
	if _, err := Value(struct{}{}); err == nil {
		t.Error("unknown type: no error")
	}
}

func TestSampleStatusAndTime(t *testing.T) {
	src := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	srv := src.Add(time.Second)
	cases := []struct {
		name string
		dv   *ua.DataValue
		q    drivers.Quality
		err  string
		ts   time.Time
	}{
		{"good source ts", &ua.DataValue{Value: ua.MustVariant(1.5), SourceTimestamp: src, ServerTimestamp: srv}, drivers.Good, "", src},
		{"server ts only", &ua.DataValue{Value: ua.MustVariant(1.5), ServerTimestamp: srv}, drivers.Good, "", srv},
		{"1601 source ts", &ua.DataValue{Value: ua.MustVariant(1.5), SourceTimestamp: time.Date(1601, 1, 1, 0, 0, 0, 0, time.UTC)}, drivers.Good, "", time.Time{}},
		{"uncertain", &ua.DataValue{Value: ua.MustVariant(1.5), Status: ua.StatusUncertainSensorNotAccurate}, drivers.Uncertain, "UncertainSensorNotAccurate", time.Time{}},
		{"bad", &ua.DataValue{Status: ua.StatusBadDeviceFailure}, drivers.Bad, "BadDeviceFailure", time.Time{}},
		{"good no value", &ua.DataValue{}, drivers.Uncertain, "no value", time.Time{}},
		{"nil", nil, drivers.Bad, "BadNoData", time.Time{}},
	}
	for _, c := range cases {
		s := sample(c.dv)
		errText := ""
		if s.Err != nil {
			errText = s.Err.Error()
		}
		if s.Quality != c.q || (c.err == "") != (errText == "") || !strings.Contains(errText, c.err) || !s.TS.Equal(c.ts) {
			t.Errorf("%s: %v %q %v; want %v %q %v", c.name, s.Quality, errText, s.TS, c.q, c.err, c.ts)
		}
	}
}

func TestParseNSU(t *testing.T) {
	for _, tc := range []struct {
		in, uri, local string
		ok             bool
	}{
		{"nsu=urn:linegate:plant;s=Plant.A", "urn:linegate:plant", "s=Plant.A", true},
		{"nsu=http://x.org/UA/;i=1001", "http://x.org/UA/", "i=1001", true},
		{"nsu=urn:a;b;s=Name;with;semicolons", "urn:a;b", "s=Name;with;semicolons", true},
		{"nsu=urn:a;g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", "urn:a", "g=72962B91-FA75-4AE6-8D28-B404DC7DAF63", true},
		{"nsu=urn:a;i=x", "", "", false},
		{"nsu=;s=A", "", "", false},
		{"nsu=urn:a", "", "", false},
	} {
		uri, local, err := parseNSU(tc.in)
		if (err == nil) != tc.ok || uri != tc.uri || local != tc.local {
			t.Errorf("parseNSU(%q) = %q, %q, %v", tc.in, uri, local, err)
		}
	}
	if tag := SourceTag("a", "nsu=urn:x;s=A"); tag.Node != "nsu=urn:x;s=A" {
		t.Errorf("SourceTag took an nsu= node id for a browse path: %+v", tag)
	}
}

func TestSkewed(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name    string
		in      drivers.Sample
		skew    time.Duration
		quality drivers.Quality
		zeroTS  bool
	}{
		{"within", drivers.Sample{Value: 1.0, TS: now.Add(4 * time.Second)}, 5 * time.Second, drivers.Good, false},
		{"ahead", drivers.Sample{Value: 1.0, TS: now.Add(time.Hour)}, 5 * time.Second, drivers.Uncertain, true},
		{"behind is not skew", drivers.Sample{Value: 1.0, TS: now.Add(-time.Hour)}, 5 * time.Second, drivers.Good, false},
		{"off", drivers.Sample{Value: 1.0, TS: now.Add(time.Hour)}, -1, drivers.Good, false},
		{"no timestamp", drivers.Sample{Value: 1.0}, 5 * time.Second, drivers.Good, true},
		{"bad keeps its error", drivers.Sample{Quality: drivers.Bad, Err: StatusError{ua.StatusBadSensorFailure}, TS: now.Add(time.Hour)}, 5 * time.Second, drivers.Bad, true},
		{"uncertain adds the reason", drivers.Sample{Quality: drivers.Uncertain, Err: StatusError{ua.StatusUncertainLastUsableValue}, TS: now.Add(time.Hour)}, 5 * time.Second, drivers.Uncertain, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.in
			skewed(&s, now, tc.skew)
			if s.Quality != tc.quality || s.TS.IsZero() != tc.zeroTS {
				t.Fatalf("%v %v ts %v", s.Quality, s.Err, s.TS)
			}
			if tc.zeroTS && !tc.in.TS.IsZero() && s.Quality != drivers.Bad && !strings.Contains(s.Err.Error(), "1h0m0s ahead of the gateway clock") {
				t.Errorf("reason %v", s.Err)
			}
			if tc.in.Err != nil && !errors.Is(s.Err, tc.in.Err) {
				t.Errorf("the sample's own error is gone: %v", s.Err)
			}
		})
	}
}

func TestSampleBits(t *testing.T) {
	tests := []struct {
		v    any
		want uint8
	}{
		{uint16(7), 16}, {int16(-1), 16}, {uint32(7), 32}, {int32(7), 32},
		{uint64(7), 64}, {int64(7), 64}, {uint8(7), 8}, {int8(7), 8},
		{3.5, 0}, {"x", 0}, {true, 0}, {[]uint16{1}, 0},
	}
	for _, tt := range tests {
		s := sample(&ua.DataValue{Value: ua.MustVariant(tt.v), EncodingMask: ua.DataValueValue})
		if s.Bits != tt.want {
			t.Errorf("%T: Bits %d, want %d", tt.v, s.Bits, tt.want)
		}
	}
}
