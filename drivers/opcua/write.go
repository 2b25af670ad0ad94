package opcua

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/gopcua/opcua/ua"

	"github.com/linegate/linegate/drivers"
)

var _ drivers.Writer = (*Driver)(nil)

// Write writes one tag's node (drivers.Writer) with the node's data type,
// read from its DataType attribute (or, for a type derived from a built-in
// one, from the variant of its current value), answers the server's
// StatusCode as the error, and reads the value back.
//
// It may run beside Subscribe (another goroutine): it uses the current
// session and never dials, and resolves the node on its own instead of
// sharing the ids the subscription keeps.
func (d *Driver) Write(ctx context.Context, index int, value any) (any, error) {
	if index < 0 || index >= len(d.tags) {
		return nil, drivers.Refused(fmt.Sprintf("no tag #%d", index))
	}
	d.mu.Lock()
	s := d.sess
	d.mu.Unlock()
	if s == nil {
		// Nothing sent: the device is down (or not read yet).
		return nil, drivers.Refused(d.errf(fmt.Errorf("write: not connected")).Error())
	}
	id, err := d.writeNode(ctx, s, index)
	if err != nil {
		return nil, d.errf(fmt.Errorf("write: %w", err))
	}
	typ, err := d.dataType(ctx, s, id)
	if err != nil {
		return nil, d.errf(fmt.Errorf("write %s: %w", id, err))
	}
	v, err := variantOf(typ, value)
	if err != nil {
		return nil, drivers.Refused(fmt.Sprintf("%s: %v", id, err))
	}
	wctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	res, err := s.c.Write(wctx, &ua.WriteRequest{NodesToWrite: []*ua.WriteValue{{
		NodeID: id, AttributeID: ua.AttributeIDValue,
		Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: v},
	}}})
	if err != nil {
		return nil, d.errf(fmt.Errorf("write %s: %w", id, describe(err)))
	}
	if len(res.Results) != 1 {
		return nil, d.errf(fmt.Errorf("write %s: %d results for 1 node", id, len(res.Results)))
	}
	if sc := res.Results[0]; sc != ua.StatusOK {
		return nil, d.errf(fmt.Errorf("write %s: %w", id, StatusError{sc}))
	}
	dv, err := d.readAttr(ctx, s, id, ua.AttributeIDValue)
	if err != nil {
		return nil, d.errf(fmt.Errorf("read back %s: %w", id, err))
	}
	smp := sample(dv)
	if smp.Quality != drivers.Good {
		return nil, d.errf(fmt.Errorf("read back %s: %v", id, smp.Err))
	}
	return smp.Value, nil
}

// writeNode is the tag's node id in session s.
func (d *Driver) writeNode(ctx context.Context, s *session, i int) (*ua.NodeID, error) {
	t := d.tags[i]
	switch {
	case t.id != nil:
		return t.id, nil
	case t.nsu != "":
		k := slices.Index(s.c.Namespaces(), t.nsu)
		if k < 0 {
			return nil, fmt.Errorf("node %s: namespace %q is not in the server's namespace array", t.Node, t.nsu)
		}
		return ua.ParseNodeID(fmt.Sprintf("ns=%d;%s", k, t.local))
	}
	b := &browser{c: s.c, cache: map[string][]Ref{}, timeout: func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, d.cfg.Timeout)
	}}
	id, err := b.resolve(ctx, t.path)
	if err != nil {
		return nil, fmt.Errorf("browse_path %s: %w", t.BrowsePath, err)
	}
	return id, nil
}

func (d *Driver) readAttr(ctx context.Context, s *session, id *ua.NodeID, attr ua.AttributeID) (*ua.DataValue, error) {
	rctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	res, err := s.c.Read(rctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{{NodeID: id, AttributeID: attr, DataEncoding: &ua.QualifiedName{}}},
		TimestampsToReturn: ua.TimestampsToReturnNeither})
	if err != nil {
		return nil, describe(err)
	}
	if len(res.Results) != 1 || res.Results[0] == nil {
		return nil, fmt.Errorf("%d results for 1 node", len(res.Results))
	}
	return res.Results[0], nil
}

// dataType is the built-in type to write id with.
func (d *Driver) dataType(ctx context.Context, s *session, id *ua.NodeID) (ua.TypeID, error) {
	dv, err := d.readAttr(ctx, s, id, ua.AttributeIDDataType)
	if err != nil {
		return 0, fmt.Errorf("read DataType: %w", err)
	}
	if dv.Status != ua.StatusOK {
		return 0, fmt.Errorf("read DataType: %w", StatusError{dv.Status})
	}
	if dv.Value != nil {
		if t, ok := dv.Value.Value().(*ua.NodeID); ok && t.Namespace() == 0 && t.IntID() >= 1 && t.IntID() <= 12 {
			return ua.TypeID(t.IntID()), nil
		}
	}
	// A derived type (an enumeration, a UtcTime ...): the encoding of the
	// current value says which built-in type the server takes.
	cur, err := d.readAttr(ctx, s, id, ua.AttributeIDValue)
	if err != nil {
		return 0, fmt.Errorf("read Value: %w", err)
	}
	if cur.Value == nil || cur.Value.Value() == nil || cur.Value.ArrayLength() > 0 {
		return 0, drivers.Refused(fmt.Sprintf("data type %v is not a scalar built-in type linegate writes", dv.Value.Value()))
	}
	return cur.Value.Type(), nil
}

// variantOf converts a raw value to the variant of type t, refusing what
// does not fit exactly (a fraction for an integer, a number out of range).
func variantOf(t ua.TypeID, v any) (*ua.Variant, error) {
	name := strings.TrimPrefix(t.String(), "TypeID") // "Int32"
	var out any
	switch t {
	case ua.TypeIDBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("a Boolean node takes true or false, not %v", v)
		}
		out = b
	case ua.TypeIDString:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("a String node takes a string, not %v", v)
		}
		out = s
	case ua.TypeIDFloat, ua.TypeIDDouble:
		f, ok := floatOf(v)
		if !ok {
			return nil, fmt.Errorf("a %s node takes a number, not %v", name, v)
		}
		if t == ua.TypeIDDouble {
			out = f
			break
		}
		if math.Abs(f) > math.MaxFloat32 {
			return nil, fmt.Errorf("%v is out of Float's range", f)
		}
		out = float32(f)
	case ua.TypeIDSByte, ua.TypeIDInt16, ua.TypeIDInt32, ua.TypeIDInt64:
		bits := map[ua.TypeID]uint{ua.TypeIDSByte: 8, ua.TypeIDInt16: 16, ua.TypeIDInt32: 32, ua.TypeIDInt64: 64}[t]
		n, ok := intOf(v)
		if !ok || bits < 64 && (n < -1<<(bits-1) || n > 1<<(bits-1)-1) {
			return nil, fmt.Errorf("%v does not fit %s", v, name)
		}
		out = map[ua.TypeID]func(int64) any{
			ua.TypeIDSByte: func(n int64) any { return int8(n) }, ua.TypeIDInt16: func(n int64) any { return int16(n) },
			ua.TypeIDInt32: func(n int64) any { return int32(n) }, ua.TypeIDInt64: func(n int64) any { return n },
		}[t](n)
	case ua.TypeIDByte, ua.TypeIDUint16, ua.TypeIDUint32, ua.TypeIDUint64:
		bits := map[ua.TypeID]uint{ua.TypeIDByte: 8, ua.TypeIDUint16: 16, ua.TypeIDUint32: 32, ua.TypeIDUint64: 64}[t]
		n, ok := uintOf(v)
		if !ok || bits < 64 && n >= 1<<bits {
			return nil, fmt.Errorf("%v does not fit %s", v, name)
		}
		out = map[ua.TypeID]func(uint64) any{
			ua.TypeIDByte: func(n uint64) any { return uint8(n) }, ua.TypeIDUint16: func(n uint64) any { return uint16(n) },
			ua.TypeIDUint32: func(n uint64) any { return uint32(n) }, ua.TypeIDUint64: func(n uint64) any { return n },
		}[t](n)
	default:
		return nil, fmt.Errorf("data type %s is not one linegate writes", name)
	}
	return ua.NewVariant(out)
}

func floatOf(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}

// intOf is v as an int64 when it is a whole number that fits.
func intOf(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case uint64:
		return int64(x), x <= math.MaxInt64
	case float64:
		if x != math.Trunc(x) || x < -(1<<63) || x >= 1<<63 {
			return 0, false
		}
		return int64(x), true
	}
	return 0, false
}

func uintOf(v any) (uint64, bool) {
	switch x := v.(type) {
	case int64:
		return uint64(x), x >= 0
	case uint64:
		return x, true
	case float64:
		if x != math.Trunc(x) || x < 0 || x >= 1<<64 {
			return 0, false
		}
		return uint64(x), true
	}
	return 0, false
}
