package tagimport

import (
	"strconv"
	"strings"
)

// kepwareTypes maps KEPServerEX data types to linegate types.
var kepwareTypes = map[string]string{
	"boolean": "bool", "short": "int16", "word": "uint16", "long": "int32", "dword": "uint32",
	"float": "float32", "double": "float64", "llong": "int64", "qword": "uint64",
}

// parseKepware reads a KEPServerEX CSV tag export of a Modbus device:
// "Tag Name","Address","Data Type","Respect Data Type","Client Access",
// "Scan Rate","Scaling","Raw Low","Raw High","Scaled Low","Scaled High",
// "Scaled Data Type","Clamp Low","Clamp High","Eng Units","Description",...
// Addresses are Modicon references (400001, 400001.3 for a bit), with the
// server's default zero-based addressing (400001 is protocol address 0).
func parseKepware(rows []row, res *Result) error {
	at, h, err := findHeader(rows, "kepware", "tag name", "address", "data type")
	if err != nil {
		return err
	}
	for _, r := range rows[at+1:] {
		if blank(r) {
			continue
		}
		t, ok := res.named(r, h.get(r, "tag name"), h.get(r, "description"))
		if !ok {
			continue
		}
		kt := strings.ToLower(h.get(r, "data type"))
		lt, ok := kepwareTypes[kt]
		if !ok {
			res.skip(r.line, "data type %q is not mapped (Boolean, Short, Word, Long, DWord, Float, Double, LLong, QWord)", h.get(r, "data type"))
			continue
		}
		t.Type = lt
		addr := h.get(r, "address")
		if strings.ContainsAny(addr, "[]HLhlSs@") || strings.Contains(addr, " ") {
			res.skip(r.line, "address %q: arrays, strings and driver-specific addresses are not mapped", addr)
			continue
		}
		if err := atModicon(&t, addr); err != nil {
			res.skip(r.line, "%v", err)
			continue
		}
		t.Unit = h.get(r, "eng units")
		switch s := strings.ToLower(h.get(r, "scaling")); s {
		case "", "none":
		case "linear":
			scale, offset, err := linear(h.get(r, "raw low"), h.get(r, "raw high"), h.get(r, "scaled low"), h.get(r, "scaled high"))
			if err != nil {
				res.skip(r.line, "linear scaling: %v", err)
				continue
			}
			t.Scale, t.Offset = scale, offset
		default:
			res.skip(r.line, "scaling %q is not mapped (only Linear)", h.get(r, "scaling"))
			continue
		}
		t.Class = defaultClass(&t)
		res.Tags = append(res.Tags, t)
	}
	return nil
}

// linear turns raw and scaled ranges into scale and offset:
// value = raw × scale + offset.
func linear(rawLo, rawHi, lo, hi string) (scale, offset float64, err error) {
	var v [4]float64
	for i, s := range []string{rawLo, rawHi, lo, hi} {
		if v[i], err = strconv.ParseFloat(s, 64); err != nil {
			return 0, 0, errorRange(s)
		}
	}
	if v[1] == v[0] {
		return 0, 0, errorRange("raw low = raw high")
	}
	scale = (v[3] - v[2]) / (v[1] - v[0])
	if scale == 0 {
		return 0, 0, errorRange("scaled low = scaled high")
	}
	return scale, v[2] - v[0]*scale, nil
}

type errorRange string

func (e errorRange) Error() string { return "range " + strconv.Quote(string(e)) + " is not usable" }
