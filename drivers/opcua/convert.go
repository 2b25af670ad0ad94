package opcua

import (
	"encoding/base64"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/linegate/linegate/drivers"
)

// StatusName is the OPC UA symbolic name of a status code ("BadNodeIdUnknown").
func StatusName(s ua.StatusCode) string {
	if d, ok := ua.StatusCodes[s]; ok {
		return strings.Replace(strings.TrimPrefix(d.Name, "Status"), "ID", "Id", 1)
	}
	// Info bits and unknown codes: name the code part, keep the hex.
	if d, ok := ua.StatusCodes[s&0xFFFF0000]; ok {
		return fmt.Sprintf("%s (0x%08X)", strings.Replace(strings.TrimPrefix(d.Name, "Status"), "ID", "Id", 1), uint32(s))
	}
	return fmt.Sprintf("0x%08X", uint32(s))
}

// StatusError is a bad or uncertain OPC UA status as an error.
type StatusError struct{ Code ua.StatusCode }

func (e StatusError) Error() string { return StatusName(e.Code) }

// quality maps the status code's severity bits (Part 4, 7.34.1).
func quality(s ua.StatusCode) drivers.Quality {
	switch uint32(s) >> 30 {
	case 0:
		return drivers.Good
	case 1:
		return drivers.Uncertain
	default:
		return drivers.Bad
	}
}

// minSourceTime: an older source timestamp is a PLC clock that was never
// set (or the OPC UA epoch 1601), not a sample time.
var minSourceTime = time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)

// skewed makes a sample whose timestamp is more than maxSkew ahead of the
// gateway's clock uncertain, with the reason, and drops the timestamp (the
// collector then uses the gateway's time): a PLC clock running ahead would
// otherwise date readings in the future and stretch state durations. A
// sample that is already bad keeps its own error.
func skewed(s *drivers.Sample, now time.Time, maxSkew time.Duration) {
	if maxSkew <= 0 || s.TS.IsZero() || s.TS.Sub(now) <= maxSkew {
		return
	}
	ahead := s.TS.Sub(now).Round(time.Millisecond)
	reason := fmt.Errorf("source timestamp %s is %v ahead of the gateway clock (max_clock_skew %v): gateway time used",
		s.TS.Format(time.RFC3339Nano), ahead, maxSkew)
	s.TS = time.Time{}
	switch s.Quality {
	case drivers.Good:
		s.Quality, s.Err = drivers.Uncertain, reason
	case drivers.Uncertain:
		s.Err = fmt.Errorf("%w; %w", s.Err, reason)
	}
}

// sample turns a DataValue into a Sample: the value converted, the status
// as quality (with its name as the error when not good), SourceTimestamp,
// else ServerTimestamp, else zero (the collector uses its read time).
func sample(dv *ua.DataValue) drivers.Sample {
	if dv == nil {
		return drivers.Sample{Quality: drivers.Bad, Err: StatusError{ua.StatusBadNoData}}
	}
	s := drivers.Sample{Quality: quality(dv.Status)}
	switch {
	case dv.SourceTimestamp.After(minSourceTime):
		s.TS = dv.SourceTimestamp.UTC()
	case dv.ServerTimestamp.After(minSourceTime):
		s.TS = dv.ServerTimestamp.UTC()
	}
	if s.Quality != drivers.Good {
		s.Err = StatusError{dv.Status}
	}
	if s.Quality == drivers.Bad {
		return s
	}
	if dv.Value == nil || dv.Value.Value() == nil {
		if s.Quality == drivers.Good {
			s.Quality, s.Err = drivers.Uncertain, fmt.Errorf("server sent no value")
		}
		return s
	}
	raw := dv.Value.Value()
	v, err := Value(raw)
	if err != nil {
		return drivers.Sample{Quality: drivers.Bad, Err: err, TS: s.TS}
	}
	s.Value, s.Bits = v, intBits(raw)
	return s
}

// intBits is the width of an integer node's data type, at which a counter
// in it rolls over; 0 for other types.
func intBits(v any) uint8 {
	switch v.(type) {
	case int8, uint8:
		return 8
	case int16, uint16:
		return 16
	case int32, uint32:
		return 32
	case int64, uint64:
		return 64
	}
	return 0
}

// Value converts a decoded variant value to what a Sample holds: bool,
// int64, uint64, float64 or string; DateTime as RFC 3339 UTC text,
// LocalizedText as its text, arrays as []any of those.
func Value(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		return x, nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case uint8:
		return uint64(x), nil
	case uint16:
		return uint64(x), nil
	case uint32:
		return uint64(x), nil
	case uint64:
		return x, nil
	case float32:
		// The shortest decimal the float32 holds: 23.4, not 23.399999618530273.
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
		if math.IsInf(float64(x), 0) || math.IsNaN(float64(x)) {
			f = float64(x)
		}
		return f, nil
	case float64:
		return x, nil
	case string:
		return x, nil
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano), nil
	case *ua.LocalizedText:
		if x == nil {
			return "", nil
		}
		return x.Text, nil
	case *ua.QualifiedName:
		if x == nil {
			return "", nil
		}
		return x.Name, nil
	case *ua.NodeID:
		return x.String(), nil
	case *ua.ExpandedNodeID:
		return x.String(), nil
	case *ua.GUID:
		return x.String(), nil
	case ua.StatusCode:
		return StatusName(x), nil
	case []byte: // ByteString
		return base64.StdEncoding.EncodeToString(x), nil
	case *ua.XMLElement:
		return string(*x), nil
	case *ua.ExtensionObject:
		return nil, fmt.Errorf("structured value (ExtensionObject %v) is not supported: read its fields", typeIDOf(x))
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
		out := make([]any, rv.Len())
		for i := range out {
			e, err := Value(rv.Index(i).Interface())
			if err != nil {
				return nil, fmt.Errorf("element %d: %w", i, err)
			}
			out[i] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("value of type %T is not supported", v)
}

func typeIDOf(x *ua.ExtensionObject) string {
	if x == nil || x.TypeID == nil || x.TypeID.NodeID == nil {
		return "?"
	}
	return x.TypeID.NodeID.String()
}
