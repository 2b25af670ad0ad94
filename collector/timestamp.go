package collector

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/linegate/linegate/buffer"
)

// timeLayout is how the payload writes every point in time: RFC 3339, UTC,
// milliseconds (as the uplink writes "ts").
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// timestamp publishes a PLC clock or a point in time as an RFC 3339 UTC
// string. A value that is no valid time is null, uncertain, with the reason.
func (t *Tag) timestamp(r *buffer.Reading, v any) {
	ts, err := decodeTimestamp(t.Timestamp, v, t.Location)
	if err != nil {
		nullify(r, err.Error())
		return
	}
	r.Value = formatTime(ts)
}

func decodeTimestamp(kind string, v any, loc *time.Location) (time.Time, error) {
	var ts time.Time
	switch kind {
	case UnixSeconds, UnixMillis:
		unit := int64(time.Second)
		if kind == UnixMillis {
			unit = int64(time.Millisecond)
		}
		switch x := v.(type) {
		case int64:
			if x > math.MaxInt64/unit || x < math.MinInt64/unit {
				return ts, fmt.Errorf("%s %d is out of range", kind, x)
			}
			ts = time.Unix(0, x*unit)
		case uint64:
			if x > uint64(math.MaxInt64/unit) {
				return ts, fmt.Errorf("%s %d is out of range", kind, x)
			}
			ts = time.Unix(0, int64(x)*unit)
		case float64:
			// Whole units and the fraction apart: 1795774502.25 s times 1e9
			// is not exact in a float64, its parts are.
			whole, frac := math.Modf(x)
			if math.IsNaN(x) || math.Abs(whole) >= float64(math.MaxInt64/unit) {
				return ts, fmt.Errorf("%s %v is out of range", kind, x)
			}
			ts = time.Unix(0, int64(whole)*unit+int64(math.Round(frac*float64(unit))))
		default:
			return ts, fmt.Errorf("%s: value %v is not a number", kind, v)
		}
	case S7DT:
		var b [8]byte
		switch x := v.(type) {
		case uint64:
			binary.BigEndian.PutUint64(b[:], x)
		case int64:
			binary.BigEndian.PutUint64(b[:], uint64(x))
		default:
			return ts, fmt.Errorf("s7_dt: value %v is not the 8 bytes of a uint64", v)
		}
		return decodeS7DT(b, loc)
	case OPCUATime:
		s, ok := v.(string)
		if !ok {
			return ts, fmt.Errorf("opcua: value %v is not a DateTime", v)
		}
		var err error
		if ts, err = time.Parse(time.RFC3339Nano, s); err != nil {
			return ts, fmt.Errorf("opcua: DateTime %q is not RFC 3339", s)
		}
		// DateTime 0 (1601-01-01) is OPC UA's "no time".
		if ts.Year() <= 1601 {
			return ts, fmt.Errorf("opcua: DateTime %s is the null time", s)
		}
	default:
		return ts, fmt.Errorf("unknown timestamp encoding %q", kind)
	}
	if y := ts.UTC().Year(); y < 1 || y > 9999 {
		return ts, fmt.Errorf("%s: year %d is out of range", kind, y)
	}
	return ts, nil
}

// decodeS7DT decodes an S7 DATE_AND_TIME: eight BCD bytes year (90..99 is
// 1990s, 00..89 the 2000s), month, day, hour, minute, second, the first two
// digits of the milliseconds, then the third digit and the weekday in one
// byte. The weekday is ignored: it says nothing the date does not, and PLCs
// that set the clock by hand often leave it wrong. The time is wall time in
// loc (the PLC's clock has no zone).
func decodeS7DT(b [8]byte, loc *time.Location) (time.Time, error) {
	bad := func(what string) (time.Time, error) {
		return time.Time{}, fmt.Errorf("s7_dt %X: %s", b[:], what)
	}
	var d [7]int
	for i := 0; i < 7; i++ {
		hi, lo := int(b[i]>>4), int(b[i]&0xF)
		if hi > 9 || lo > 9 {
			return bad(fmt.Sprintf("byte %d (0x%02X) is not BCD", i, b[i]))
		}
		d[i] = hi*10 + lo
	}
	msLast := int(b[7] >> 4)
	if msLast > 9 {
		return bad(fmt.Sprintf("byte 7 (0x%02X) is not BCD", b[7]))
	}
	year := 2000 + d[0]
	if d[0] >= 90 {
		year = 1900 + d[0]
	}
	month, day, hour, minute, sec := d[1], d[2], d[3], d[4], d[5]
	switch {
	case month < 1 || month > 12:
		return bad(fmt.Sprintf("month %d", month))
	case day < 1 || day > daysIn(year, month):
		return bad(fmt.Sprintf("day %d of %d-%02d", day, year, month))
	case hour > 23 || minute > 59 || sec > 59:
		return bad(fmt.Sprintf("time %02d:%02d:%02d", hour, minute, sec))
	}
	if loc == nil {
		loc = time.UTC
	}
	ms := d[6]*10 + msLast
	return time.Date(year, time.Month(month), day, hour, minute, sec, ms*int(time.Millisecond), loc), nil
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
