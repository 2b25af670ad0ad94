package tagimport

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/linegate/linegate/configs"
)

// parseGeneric reads a CSV with a header naming its columns:
//
//	name, address, register, type, unit, scale, offset, class, bit, length, description, node
//
// Only name and address (or node) are required. address is a 0-based
// protocol address when a register column is given, else a Modicon
// reference (40001, 400001, 40001.3). A row with node is an OPC UA tag.
func parseGeneric(rows []row, res *Result) error {
	at, h, err := findHeader(rows, "csv", "name")
	if err != nil {
		return err
	}
	if !h.has("address") && !h.has("node") {
		return fmt.Errorf("csv: the header needs an address or a node column")
	}
	opcua := 0
	for _, r := range rows[at+1:] {
		if blank(r) || strings.HasPrefix(r.fields[0], "#") {
			continue
		}
		t, ok := res.named(r, h.get(r, "name", "tag", "tag name"), h.get(r, "description", "comment"))
		if !ok {
			continue
		}
		t.Unit = h.get(r, "unit", "eng units", "units")
		t.Class = strings.ToLower(h.get(r, "class"))
		if t.Class != "" && t.Class != "process" && t.Class != "equipment" && t.Class != "time" {
			res.skip(r.line, "class %q: want process, equipment or time", t.Class)
			continue
		}
		if s := h.get(r, "scale"); s != "" {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || v == 0 {
				res.skip(r.line, "scale %q is not a number other than 0", s)
				continue
			}
			t.Scale = v
		}
		if s := h.get(r, "offset"); s != "" {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				res.skip(r.line, "offset %q is not a number", s)
				continue
			}
			t.Offset = v
		}
		if node := h.get(r, "node", "node id", "nodeid"); node != "" {
			if !configs.IsNodeID(node) {
				res.skip(r.line, "node %q is not an OPC UA node id (ns=2;s=Name, ns=3;i=1001, i=2258)", node)
				continue
			}
			t.Node = node
			opcua++
			if t.Class == "" {
				t.Class = "process"
			}
			res.Tags = append(res.Tags, t)
			continue
		}
		typ := strings.ToLower(h.get(r, "type", "data type", "datatype"))
		if typ != "" {
			lt, ok := linegateTypes[typ]
			if !ok {
				res.skip(r.line, "type %q is not one linegate reads (%s)", typ, typeList)
				continue
			}
			t.Type = lt
		}
		if s := h.get(r, "length"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				res.skip(r.line, "length %q is not a whole number", s)
				continue
			}
			t.Length = n
		}
		addr := h.get(r, "address")
		if reg := strings.ToLower(h.get(r, "register")); reg != "" {
			if reg != "holding" && reg != "input" && reg != "coil" && reg != "discrete" {
				res.skip(r.line, "register %q: want holding, input, coil or discrete", reg)
				continue
			}
			n, err := strconv.Atoi(addr)
			if err != nil || n < 0 || n > 65535 {
				res.skip(r.line, "address %q: want 0..65535 (0-based, with the register column)", addr)
				continue
			}
			t.Register, t.Address = reg, n
			if b := h.get(r, "bit"); b != "" {
				n, err := strconv.Atoi(b)
				if err != nil || n < 0 || n > 15 {
					res.skip(r.line, "bit %q: want 0..15", b)
					continue
				}
				t.Bit = n
			}
		} else {
			if addr == "" {
				res.skip(r.line, "no address")
				continue
			}
			reg, n, bit, err := parseModicon(addr)
			if err != nil {
				res.skip(r.line, "%v", err)
				continue
			}
			t.Register, t.Address, t.Bit = reg, n, bit
		}
		if err := checkModbus(&t); err != nil {
			res.skip(r.line, "%v", err)
			continue
		}
		if t.Class == "" {
			t.Class = defaultClass(&t)
		}
		res.Tags = append(res.Tags, t)
	}
	if opcua > 0 && opcua == len(res.Tags) {
		res.Driver = "opcua"
	} else if opcua > 0 {
		return fmt.Errorf("csv: the file mixes OPC UA rows (node) and Modbus rows (address): split it, one device each")
	}
	return nil
}

var linegateTypes = map[string]string{
	"bool": "bool", "int16": "int16", "uint16": "uint16", "int32": "int32", "uint32": "uint32",
	"int64": "int64", "uint64": "uint64", "float32": "float32", "float64": "float64", "string": "string",
	"float": "float32", "real": "float32", "double": "float64", "word": "uint16", "short": "int16", "int": "int16",
}

const typeList = "bool, int16, uint16, int32, uint32, int64, uint64, float32, float64, string"

func blank(r row) bool {
	for _, f := range r.fields {
		if f != "" {
			return false
		}
	}
	return true
}
