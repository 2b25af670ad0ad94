package agent

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"reflect"
	"sort"

	"github.com/linegate/linegate/configs"
)

// deviceDigest sums everything a device's config sets, except where it
// stands in the file (an edit above a device moves its lines, not its
// settings) and the loaded Location (Timezone is summed). Reload compares
// digests instead of keeping every running device's config: at 10,000 tags
// the configs would be 5 MB of a 40 MiB budget. Secrets are summed by value,
// so a changed password restarts the device.
func deviceDigest(d configs.Device) [sha256.Size]byte {
	d.Line = 0
	d.Location = nil
	tags := d.Tags
	d.Tags = nil
	h := sha256.New()
	var w digestWriter
	w.value(reflect.ValueOf(d))
	w.u64(uint64(len(tags)))
	for _, t := range tags {
		t.Line = 0
		w.value(reflect.ValueOf(t))
		if len(w.buf) > 4096 {
			h.Write(w.buf)
			w.buf = w.buf[:0]
		}
	}
	h.Write(w.buf)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// digestWriter encodes a value unambiguously: every string and collection
// carries its length, every pointer says whether it is nil.
type digestWriter struct{ buf []byte }

func (w *digestWriter) u64(v uint64) { w.buf = binary.LittleEndian.AppendUint64(w.buf, v) }

func (w *digestWriter) str(s string) {
	w.u64(uint64(len(s)))
	w.buf = append(w.buf, s...)
}

func (w *digestWriter) value(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			w.value(v.Field(i))
		}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			w.u64(0)
			return
		}
		w.u64(1)
		w.value(v.Elem())
	case reflect.Slice, reflect.Array:
		w.u64(uint64(v.Len()))
		for i := range v.Len() {
			w.value(v.Index(i))
		}
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(a, b int) bool { return lessKey(keys[a], keys[b]) })
		w.u64(uint64(len(keys)))
		for _, k := range keys {
			w.value(k)
			w.value(v.MapIndex(k))
		}
	case reflect.String:
		w.str(v.String()) // the value itself, also of a configs.Secret
	case reflect.Bool:
		if v.Bool() {
			w.u64(1)
		} else {
			w.u64(0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		w.u64(uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		w.u64(v.Uint())
	case reflect.Float32, reflect.Float64:
		w.u64(math.Float64bits(v.Float()))
	default:
		// Funcs, channels: a config holds none. Marking the kind keeps
		// two different configs from summing alike should one appear.
		w.str(v.Kind().String())
	}
}

func lessKey(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.String:
		return a.String() < b.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() < b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return a.Uint() < b.Uint()
	}
	return false
}
