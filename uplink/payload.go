package uplink

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/linegate/linegate/buffer"
)

// Schema names the payload version in every JSON the uplink publishes.
const Schema = "linegate/v1"

// Gateway identifies the gateway in topics and payloads.
type Gateway struct {
	ID, Site, Area, Line string
}

// The encoders below are hand-written appenders rather than encoding/json
// because they run once per published message: no reflection, no maps, no
// allocation when dst has room. Their output is byte-for-byte what
// encoding/json (with HTML escaping off) produces for the same values, which
// the tests check, so the MES can parse it with any JSON library.

// AppendJSON appends the linegate/v1 JSON of m to dst, fields in the order of
// the MQTT contract (README.md). historical is the caller's verdict (see
// Uplink.serve).
func AppendJSON(dst []byte, m buffer.Message, gw Gateway, historical bool) []byte {
	dst = append(dst, `{"schema":"`+Schema+`","id":`...)
	dst = appendID(dst, gw.ID, m.Seq)
	dst = append(dst, `,"gateway":`...)
	dst = appendString(dst, gw.ID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, m.Seq, 10)
	dst = append(dst, `,"site":`...)
	dst = appendString(dst, gw.Site)
	dst = append(dst, `,"area":`...)
	dst = appendString(dst, gw.Area)
	dst = append(dst, `,"line":`...)
	dst = appendString(dst, gw.Line)
	dst = append(dst, `,"equipment":`...)
	dst = appendString(dst, m.Equipment)
	dst = append(dst, `,"class":`...)
	dst = appendString(dst, m.Class)
	dst = append(dst, `,"ts":`...)
	dst = appendTime(dst, m.Created)
	dst = append(dst, `,"historical":`...)
	dst = strconv.AppendBool(dst, historical)
	dst = append(dst, `,"readings":[`...)
	for i := range m.Readings {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendReading(dst, &m.Readings[i])
	}
	return append(dst, "]}"...)
}

func appendReading(dst []byte, r *buffer.Reading) []byte {
	dst = append(dst, `{"tag":`...)
	dst = appendString(dst, r.Tag)
	dst = append(dst, `,"value":`...)
	dst = appendValue(dst, r.Value)
	if r.Unit != "" {
		dst = append(dst, `,"unit":`...)
		dst = appendString(dst, r.Unit)
	}
	dst = append(dst, `,"quality":"`...)
	dst = append(dst, r.Quality.String()...)
	dst = append(dst, '"')
	// An empty error says nothing, so it is left out even for a bad reading.
	if r.Quality != buffer.Good && r.Error != "" {
		dst = append(dst, `,"error":`...)
		dst = appendString(dst, r.Error)
	}
	dst = append(dst, `,"ts":`...)
	dst = appendTime(dst, r.TS)
	dst = appendAttrs(dst, r.Attrs, isReadingField)
	return append(dst, '}')
}

// AppendEventJSON appends the JSON of an event:
// {"schema":..,"gateway":..,"event":"<Type>",<attrs...>,"ts":..}.
func AppendEventJSON(dst []byte, e buffer.Event, gw Gateway) []byte {
	dst = append(dst, `{"schema":"`+Schema+`","gateway":`...)
	dst = appendString(dst, gw.ID)
	dst = append(dst, `,"event":`...)
	dst = appendString(dst, e.Type)
	dst = appendAttrs(dst, e.Attrs, isEventField)
	dst = append(dst, `,"ts":`...)
	dst = appendTime(dst, e.TS)
	return append(dst, '}')
}

// StatusJSON is the payload of the retained status topic (and of the last
// will); state is "online" or "offline".
func StatusJSON(gw Gateway, state string, ts time.Time, version string) []byte {
	dst := make([]byte, 0, 128)
	dst = append(dst, `{"schema":"`+Schema+`","gateway":`...)
	dst = appendString(dst, gw.ID)
	dst = append(dst, `,"state":`...)
	dst = appendString(dst, state)
	dst = append(dst, `,"ts":`...)
	dst = appendTime(dst, ts)
	dst = append(dst, `,"version":`...)
	dst = appendString(dst, version)
	return append(dst, '}')
}

// appendAttrs appends extra fields. An attribute named like one of the
// fixed fields is skipped: a duplicate key is legal JSON but parsers disagree
// on which one wins, and the fixed field must.
func appendAttrs(dst []byte, attrs []buffer.Attr, reserved func(string) bool) []byte {
	for i := range attrs {
		a := &attrs[i]
		if reserved(a.Key) {
			continue
		}
		dst = append(dst, ',')
		dst = appendString(dst, a.Key)
		dst = append(dst, ':')
		dst = appendValue(dst, a.Value)
	}
	return dst
}

func isReadingField(k string) bool {
	switch k {
	case "tag", "value", "unit", "quality", "error", "ts":
		return true
	}
	return false
}

func isEventField(k string) bool {
	switch k {
	case "schema", "gateway", "event", "ts":
		return true
	}
	return false
}

// appendID appends "<gateway>:<seq>", the MES's de-duplication key.
func appendID(dst []byte, gateway string, seq uint64) []byte {
	dst = appendString(dst, gateway)
	dst = dst[:len(dst)-1] // reopen the string to add ":<seq>"
	dst = append(dst, ':')
	dst = strconv.AppendUint(dst, seq, 10)
	return append(dst, '"')
}

// appendTime appends t as a quoted RFC 3339 UTC time with milliseconds and
// "Z". The layout yields only digits and "-:.TZ", so no escaping is needed.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		dst = append(dst, '"')
		dst = t.AppendFormat(dst, timeLayout)
		return append(dst, '"')
	}
	// Written by hand: every reading has a timestamp, and AppendFormat's
	// layout parsing was 7 % of the agent's CPU at 10,000 readings/s.
	hour, min, sec := t.Clock()
	ms := t.Nanosecond() / int(time.Millisecond)
	return append(dst, '"',
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+min/10), byte('0'+min%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z', '"')
}

// timeLayout is the payload's time format (README.md): RFC 3339, UTC,
// milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// appendValue appends a reading or attribute value. The buffer stores nil,
// bool, int64, uint64, float64 and string; the other cases keep an unexpected
// type from breaking the payload.
func appendValue(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, v)
	case int64:
		return strconv.AppendInt(dst, v, 10)
	case uint64:
		return strconv.AppendUint(dst, v, 10)
	case float64:
		return appendFloat(dst, v, 64)
	case string:
		return appendString(dst, v)
	case int:
		return strconv.AppendInt(dst, int64(v), 10)
	case int8:
		return strconv.AppendInt(dst, int64(v), 10)
	case int16:
		return strconv.AppendInt(dst, int64(v), 10)
	case int32:
		return strconv.AppendInt(dst, int64(v), 10)
	case uint:
		return strconv.AppendUint(dst, uint64(v), 10)
	case uint8:
		return strconv.AppendUint(dst, uint64(v), 10)
	case uint16:
		return strconv.AppendUint(dst, uint64(v), 10)
	case uint32:
		return strconv.AppendUint(dst, uint64(v), 10)
	case float32:
		return appendFloat(dst, float64(v), 32)
	case time.Time:
		return appendTime(dst, v)
	case time.Duration:
		// Durations are seconds everywhere in the payload (the time class,
		// collector/README.md).
		return appendFloat(dst, v.Seconds(), 64)
	case []any:
		// OPC UA arrays become JSON arrays.
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, e)
		}
		return append(dst, ']')
	default:
		// fmt.Sprint uses String/Error methods and recovers from their panics.
		return appendString(dst, fmt.Sprint(v))
	}
}

// appendFloat formats like encoding/json: the shortest representation that
// parses back to the same value, exponent form only below 1e-6 or from 1e21
// on. JSON has no NaN or infinity, so those become null.
func appendFloat(dst []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	dst = strconv.AppendFloat(dst, f, format, -1, bits)
	if format == 'e' {
		// 1e-07 -> 1e-7, as encoding/json writes it.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string: quote, backslash and control
// characters escaped, each byte of invalid UTF-8 replaced by \ufffd, and
// U+2028/U+2029 escaped so that the payload is also valid JavaScript.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
