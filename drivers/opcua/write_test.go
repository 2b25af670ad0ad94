package opcua

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gopcua/opcua/ua"

	"github.com/linegate/linegate/drivers"
)

func TestVariantOf(t *testing.T) {
	tests := []struct {
		typ  ua.TypeID
		in   any
		want any // nil: refused
	}{
		{ua.TypeIDDouble, 52.5, 52.5},
		{ua.TypeIDDouble, int64(3), 3.0},
		{ua.TypeIDFloat, 52.5, float32(52.5)},
		{ua.TypeIDFloat, 1e39, nil},
		{ua.TypeIDInt32, 3.0, int32(3)},
		{ua.TypeIDInt32, 3.5, nil},
		{ua.TypeIDInt16, int64(40000), nil},
		{ua.TypeIDInt16, int64(-32768), int16(-32768)},
		{ua.TypeIDSByte, int64(-129), nil},
		{ua.TypeIDByte, int64(255), uint8(255)},
		{ua.TypeIDByte, int64(256), nil},
		{ua.TypeIDUint16, int64(-1), nil},
		{ua.TypeIDUint32, 7.0, uint32(7)},
		{ua.TypeIDUint64, uint64(1 << 63), uint64(1 << 63)},
		{ua.TypeIDInt64, uint64(1 << 63), nil},
		{ua.TypeIDBoolean, true, true},
		{ua.TypeIDBoolean, int64(1), nil},
		{ua.TypeIDString, "B-0816", "B-0816"},
		{ua.TypeIDString, 1.0, nil},
		{ua.TypeIDDateTime, "2026-01-01T00:00:00Z", nil},
	}
	for _, tt := range tests {
		v, err := variantOf(tt.typ, tt.in)
		switch {
		case tt.want == nil && err == nil:
			t.Errorf("%s %#v: %#v, want refused", tt.typ, tt.in, v.Value())
		case tt.want != nil && err != nil:
			t.Errorf("%s %#v: %v", tt.typ, tt.in, err)
		case tt.want != nil && v.Value() != tt.want:
			t.Errorf("%s %#v = %#v (%T), want %#v (%T)", tt.typ, tt.in, v.Value(), v.Value(), tt.want, tt.want)
		}
	}
}

// A write before any session sends nothing: refused, not failed.
func TestWriteWithoutSession(t *testing.T) {
	d := newDriver(t, Config{Endpoint: "opc.tcp://127.0.0.1:1", Tags: []Tag{{Name: "sp", Node: "ns=1;s=Quiet.Setpoint"}}})
	_, err := d.Write(context.Background(), 0, 1.0)
	var r *drivers.RefusedError
	if !errors.As(err, &r) || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("write without a session: %v, want refused", err)
	}
	if _, err := d.Write(context.Background(), 5, 1.0); !errors.As(err, &r) {
		t.Errorf("write of no tag: %v, want refused", err)
	}
}
