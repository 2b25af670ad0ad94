package collector

import (
	"math"
	"strconv"

	"github.com/linegate/linegate/buffer"
)

// sameValue reports whether two reading values are the same, for the
// deadband and report-by-exception. Values are what drivers deliver and
// normalization makes: nil, bool, int64, uint64, float64, string and []any
// of those (OPC UA arrays, nested for matrices). Go's == on two interfaces
// holding []any panics, so every shape is compared here, never with ==.
// A NaN equals a NaN (the same unchanged reading); a type the collector does
// not know is never the same, so it is reported rather than held back.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case int64:
		y, ok := b.(int64)
		return ok && x == y
	case uint64:
		y, ok := b.(uint64)
		return ok && x == y
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !sameValue(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return false
}

// sameAttrs compares two attribute lists key by key and value by value.
func sameAttrs(a, b []buffer.Attr) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !sameValue(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// finiteArray returns arr with every NaN and ±Inf (at any depth) replaced
// by nil, and the first such element as the reason; arr itself and "" when
// there is none. arr is never modified: the driver may keep it.
func finiteArray(arr []any) ([]any, string) {
	reason := ""
	for i, e := range arr {
		switch x := e.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				reason = "element " + strconv.Itoa(i) + " is " + strconv.FormatFloat(x, 'g', -1, 64)
			}
		case []any:
			if _, r := finiteArray(x); r != "" {
				reason = "element " + strconv.Itoa(i) + ": " + r
			}
		}
		if reason != "" {
			break
		}
	}
	if reason == "" {
		return arr, ""
	}
	out := make([]any, len(arr))
	for i, e := range arr {
		switch x := e.(type) {
		case float64:
			if !math.IsNaN(x) && !math.IsInf(x, 0) {
				out[i] = x
			}
		case []any:
			out[i], _ = finiteArray(x)
		default:
			out[i] = e
		}
	}
	return out, reason
}
