package opcua

import (
	"context"
	"testing"
	"time"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/linegate/linegate/drivers"
)

// decodeDataValue decodes b with gopcua. gopcua v0.9.1 panics on some
// inputs (a negative array length: "reflect.MakeSlice: negative len", seed
// gopcua-negative-array-len): that is its bug (README.md, "Known limits of
// gopcua v0.9.1"), not linegate's, so it counts as undecodable here and the
// fuzzer goes on with what linegate does with a decoded value.
func decodeDataValue(b []byte) (dv *ua.DataValue, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	dv = new(ua.DataValue)
	_, err := dv.Decode(b)
	return dv, err == nil
}

// FuzzVariant decodes arbitrary bytes as an OPC UA DataValue, as a server's
// reply would arrive, and converts it: neither may panic, and a converted
// value is one of the kinds a Sample holds. The seed corpus is
// testdata/fuzz/FuzzVariant plus the encodings of typical values below.
// gopcuaBounded says whether gopcua v0.9.1 decodes data in bounded time
// and memory. Its decoder trusts the lengths it reads: array dimensions
// (variant mask 0x40) allocate up to 2^31 int32s before they are read (an
// 8 GiB allocation from 13 bytes killed the fuzzing process), and containers
// (variants of ExtensionObject, DataValue, Variant, DiagnosticInfo) nest
// arrays of up to 65,535 elements that are decoded even once the input has
// run out (~5 ms per 5 bytes; a few kB ran past the fuzz time). Those are
// gopcua's bugs (README, OPC UA), not linegate's; the fuzzer skips them and
// goes on with what linegate does with a decoded value: the values a Sample
// carries are scalars and arrays of them, in at most 128 bytes here.
func gopcuaBounded(data []byte) bool {
	const maxFuzzValue = 128
	if len(data) > maxFuzzValue {
		return false
	}
	if len(data) < 2 || data[0]&byte(ua.DataValueValue) == 0 {
		return true // no value
	}
	mask := data[1]
	switch ua.TypeID(mask & 0x3f) {
	case ua.TypeIDExtensionObject, ua.TypeIDDataValue, ua.TypeIDVariant, ua.TypeIDDiagnosticInfo:
		return false
	}
	return mask&0x40 == 0
}

func FuzzVariant(f *testing.F) {
	ts := time.Date(2026, 11, 27, 10, 15, 2, 0, time.UTC)
	for _, v := range []any{true, int16(-3), uint32(7), float32(23.4), 1e300, "running", ts,
		[]float64{1, 2}, ua.NewLocalizedText("auto"), ua.NewNumericNodeID(2, 1001), []byte{1, 2}} {
		vv, err := ua.NewVariant(v)
		if err != nil {
			f.Fatal(err)
		}
		dv := &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueSourceTimestamp | ua.DataValueStatusCode,
			Value: vv, SourceTimestamp: ts, Status: ua.StatusUncertain}
		b, err := dv.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !gopcuaBounded(data) {
			return
		}
		dv, ok := decodeDataValue(data)
		if !ok {
			return
		}
		s := sample(dv)
		switch v := s.Value.(type) {
		case nil, bool, int64, uint64, float64, string, []any:
		default:
			t.Fatalf("sample value of type %T", v)
		}
		if s.Value != nil && s.Err != nil && s.Quality == 0 {
			t.Fatalf("good sample with an error: %+v", s)
		}
	})
}

// FuzzPublished feeds the Publish answer handling (published,
// notification, gap) with arbitrary answers: subscription ids, sequence
// numbers, keep-alives, data changes with any client handle and status,
// status changes. It must not panic, every change must name a configured
// tag, and a good change carries no error. The session is a client that
// never connected: a Republish for a gap fails as on a dead channel.
func FuzzPublished(f *testing.F) {
	f.Add(uint32(1), uint32(1), uint32(1), false, []byte{0, 0, 0, 0, 1, 1, 0x80, 0, 0, 2})
	f.Add(uint32(1), uint32(5), uint32(2), true, []byte{})
	f.Add(uint32(2), uint32(1), uint32(1), false, []byte{7, 0x80, 0x34, 0, 0})
	f.Add(uint32(1), uint32(0), uint32(3), false, []byte{255, 255})
	c, err := gopcua.NewClient("opc.tcp://127.0.0.1:1")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, subID, seq, next uint32, keepAlive bool, items []byte) {
		d, err := New(Config{Endpoint: "opc.tcp://127.0.0.1:1", PKIDir: t.TempDir(), Tags: []Tag{
			{Name: "a", Node: "ns=1;i=1"}, {Name: "b", Node: "ns=1;i=2"}, {Name: "c", BrowsePath: "X/Y"}}})
		if err != nil {
			t.Fatal(err)
		}
		s := &session{c: c, maxRead: 1, maxMon: 1}
		sub := &subscription{id: 1, keepAlive: time.Second, nextSeq: next, items: []item{{id: 1}, {id: 2}, {failed: true}}}
		msg := &ua.NotificationMessage{SequenceNumber: seq}
		if !keepAlive {
			var mis []*ua.MonitoredItemNotification
			for len(items) >= 5 {
				st := ua.StatusCode(uint32(items[1])<<24 | uint32(items[2])<<16)
				v, _ := ua.NewVariant(int32(items[3]) - int32(items[4]))
				mis = append(mis, &ua.MonitoredItemNotification{ClientHandle: uint32(items[0]) % 5,
					Value: &ua.DataValue{EncodingMask: ua.DataValueValue | ua.DataValueStatusCode, Value: v, Status: st}})
				if items[0]&0x80 != 0 {
					mis = append(mis, nil)
				}
				items = items[5:]
			}
			data := []*ua.ExtensionObject{ua.NewExtensionObject(&ua.DataChangeNotification{MonitoredItems: mis}), nil}
			if len(items) > 0 {
				data = append(data, ua.NewExtensionObject(&ua.StatusChangeNotification{Status: ua.StatusCode(uint32(items[0]) << 24)}))
			}
			msg.NotificationData = data
		}
		changes, _, _ := d.published(context.Background(), s, sub, published{res: &ua.PublishResponse{SubscriptionID: subID, NotificationMessage: msg}, at: time.Now()})
		for _, ch := range changes {
			if ch.Index < 0 || ch.Index >= 3 {
				t.Fatalf("change for tag %d", ch.Index)
			}
			if ch.Sample.Quality == drivers.Good && ch.Sample.Err != nil {
				t.Fatalf("good change with an error: %+v", ch)
			}
		}
	})
}
