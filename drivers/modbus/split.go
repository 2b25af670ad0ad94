package modbus

// splittable tells the exceptions a device answers when a merged read
// spans an address it does not serve: 2 (illegal data address) by the
// book, 3 (illegal data value) by some PLCs. The others are no reason to
// split: 4 (server device failure) and 6 (busy) come from a PLC in STOP
// or busy and pass, 10 and 11 from a gateway whose device did not answer,
// 1 (illegal function) holds for any part.
func splittable(e *Exception) bool { return e.Code == 2 || e.Code == 3 }

// gatewayNoAnswer tells the exceptions a gateway answers for a unit that
// did not: the device is as good as silent.
func gatewayNoAnswer(err error) bool {
	e, ok := err.(*Exception)
	return ok && (e.Code == 10 || e.Code == 11)
}

// clusters cuts r into its smallest reads, in address order: tags that
// share registers (bits of one status word, overlapping values) stay
// together, since reading them apart would only read the same registers
// twice.
func clusters(fields []field, r Request) []Request {
	var out []Request
	var end int
	for _, i := range r.Tags { // plan keeps them by address
		f := &fields[i]
		start, fend := int(f.addr), int(f.addr)+int(f.width)
		if n := len(out); n > 0 && start < end {
			c := &out[n-1]
			end = max(end, fend)
			c.Count = uint16(end - int(c.Address))
			c.Tags = append(c.Tags, i)
			continue
		}
		out = append(out, Request{Register: r.Register, Address: f.addr, Count: f.width, Tags: []int{i}})
		end = fend
	}
	return out
}

// merge is one read that covers parts (in address order).
func merge(parts []Request) Request {
	r := Request{Register: parts[0].Register, Address: parts[0].Address}
	end := 0
	for _, p := range parts {
		end = max(end, int(p.Address)+int(p.Count))
		r.Tags = append(r.Tags, p.Tags...)
	}
	r.Count = uint16(end - int(r.Address))
	return r
}
