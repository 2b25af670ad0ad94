package opcua

import (
	"testing"
	"time"

	"github.com/gopcua/opcua/ua"
)

// decodeDataValue decodes b with gopcua. gopcua v0.9.1 panics on some
// inputs (a negative array length: "reflect.MakeSlice: negative len", seed
// gopcua-negative-array-len): that is its bug, reported in the issue notes,
// not linegate's, so it counts as undecodable here and the fuzzer goes on
// with what linegate does with a decoded value.
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
