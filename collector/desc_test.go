package collector

import (
	"reflect"
	"testing"
	"time"

	"github.com/linegate/linegate/drivers"
)

// TestDescribeKeepsEveryRule checks that a tag with any field beyond the
// plain ones keeps its full Tag, so that a new Tag field cannot be lost by
// the compact description, and that a plain tag does not.
func TestDescribeKeepsEveryRule(t *testing.T) {
	plainFields := map[string]bool{"Name": true, "Class": true, "Unit": true, "Scale": true, "Offset": true,
		"Deadband": true, "ReportEvery": true, "CounterBits": true, "Float32": true, "Counter": true}
	typ := reflect.TypeFor[Tag]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		t.Run(f.Name, func(t *testing.T) {
			var tag Tag
			v := reflect.ValueOf(&tag).Elem().Field(i)
			switch v.Kind() {
			case reflect.String:
				v.SetString("x")
			case reflect.Bool:
				v.SetBool(true)
			case reflect.Float64:
				v.SetFloat(2)
			case reflect.Int, reflect.Int64:
				v.SetInt(3)
			case reflect.Map:
				v.Set(reflect.MakeMap(v.Type()))
			case reflect.Slice:
				v.Set(reflect.MakeSlice(v.Type(), 1, 1))
			case reflect.Pointer:
				v.Set(reflect.New(v.Type().Elem()))
			default:
				t.Fatalf("field %s of kind %s: teach this test to set it", f.Name, v.Kind())
			}
			if f.Name == "Location" {
				tag.Timestamp = S7DT // without a Timestamp the zone is unused
			}
			d := describe(tag)
			if plainFields[f.Name] {
				if d.full != nil {
					t.Fatalf("plain field %s: kept the full Tag", f.Name)
				}
				if got := d.plain(); !reflect.DeepEqual(got, tag) {
					t.Fatalf("plain field %s: description gives %+v, want %+v", f.Name, got, tag)
				}
				return
			}
			if d.full == nil || !reflect.DeepEqual(*d.full, tag) {
				t.Fatalf("rule field %s: full Tag %+v, want %+v", f.Name, d.full, tag)
			}
		})
	}
}

// TestDescribedNormalizesAsTag checks that a description normalizes a
// sample exactly as its Tag does, plain or not.
func TestDescribedNormalizesAsTag(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 3, 0, 0, 0, time.UTC)
	tags := []Tag{
		{Name: "t", Class: "process", Unit: "°C", Scale: 0.1, Offset: -5, Float32: true},
		{Name: "n", Class: "process", Counter: true, CounterBits: 16},
		{Name: "d", Class: "process", Deadband: 2, ReportEvery: time.Minute, Location: time.UTC},
		{Name: "s", Class: "equipment", States: map[int64]string{1: "running"}},
		{Name: "m", Class: "process", Map: &LinearMap{RawHi: 27648, Hi: 100}, Limits: &[2]float64{0, 90}},
	}
	samples := []drivers.Sample{{Value: int64(1)}, {Value: uint64(13824)}, {Value: 23.4}, {Quality: drivers.Bad}, {Value: int64(40000)}}
	for _, tag := range tags {
		d := describe(tag)
		var stTag, stDesc tagState
		for i, s := range samples {
			at := t0.Add(time.Duration(i) * time.Second)
			want, wantOK := tag.normalize(s, &stTag, at)
			got, gotOK := d.normalize(s, &stDesc, at)
			if !reflect.DeepEqual(got, want) || gotOK != wantOK {
				t.Fatalf("%s, sample %d: description gives %+v %v, Tag %+v %v", tag.Name, i, got, gotOK, want, wantOK)
			}
		}
		if d.unit() != tag.unit() || d.isState() != tag.isState() {
			t.Fatalf("%s: unit %q state %v, Tag %q %v", tag.Name, d.unit(), d.isState(), tag.unit(), tag.isState())
		}
	}
}

// TestCompactedDeviceKeepsOEE checks that a device compacted before New
// (as the agent builds them) still finds its OEE tags: they are looked up in
// the descriptions, not in Tags, which Compact clears.
func TestCompactedDeviceKeepsOEE(t *testing.T) {
	for _, compact := range []bool{false, true} {
		d := Device{Name: "press01", Interval: time.Second, Driver: &scriptDriver{},
			OEE: &OEE{StateTag: "state", TotalCounter: "total", GoodCounter: "good", IdealCycle: 5,
				Categories: map[string]Category{"running": OEERun}},
			Tags: []Tag{{Name: "state", Class: "equipment", States: map[int64]string{1: "running"}},
				{Name: "total", Class: "equipment", Counter: true}, {Name: "good", Class: "equipment", Counter: true}}}
		if compact {
			d.Compact()
		}
		c, err := New(Options{Devices: []Device{d}, Sink: &memSink{}})
		if err != nil {
			t.Fatalf("compact %v: %v", compact, err)
		}
		if c.devices[0].oee == nil || len(c.devices[0].Tags) != 3 {
			t.Fatalf("compact %v: oee %v, %d tags", compact, c.devices[0].oee, len(c.devices[0].Tags))
		}
	}
}
