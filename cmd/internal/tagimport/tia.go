package tagimport

import (
	"strings"

	"github.com/linegate/linegate/configs"
)

// tiaTypes are the TIA Portal data types linegate can read over OPC UA.
var tiaTypes = map[string]bool{
	"bool": true, "byte": true, "word": true, "dword": true, "lword": true, "sint": true, "int": true,
	"dint": true, "lint": true, "usint": true, "uint": true, "udint": true, "ulint": true,
	"real": true, "lreal": true, "string": true, "wstring": true, "char": true, "time": true,
}

// parseTIA reads a TIA Portal PLC tag table export (the "PLC Tags" sheet
// saved as CSV): Name, Path, Data Type, Logical Address, Comment, Hmi
// Visible, Hmi Accessible, Hmi Writeable, ... An S7-1500 serves its PLC
// tags over OPC UA as ns=3;s="Name"; a tag that is not HMI accessible is
// not served, and is reported.
func parseTIA(rows []row, res *Result, opts Options) error {
	at, h, err := findHeader(rows, "tia", "name", "data type", "logical address")
	if err != nil {
		return err
	}
	prefix := opts.NodePrefix
	if prefix == "" {
		prefix = "ns=3;s="
	}
	for _, r := range rows[at+1:] {
		if blank(r) {
			continue
		}
		name := h.get(r, "name")
		t, ok := res.named(r, name, h.get(r, "comment"))
		if !ok {
			continue
		}
		dt := h.get(r, "data type")
		if !tiaTypes[strings.ToLower(dt)] {
			res.skip(r.line, "%s: data type %q is not mapped (arrays, structs and UDTs: browse them with linegate opcua browse --yaml)", name, dt)
			continue
		}
		if strings.EqualFold(h.get(r, "hmi accessible", "accessible from hmi/opc ua", "accessible from hmi/opc ua/web api"), "false") {
			res.skip(r.line, "%s is not HMI accessible, so the PLC's OPC UA server does not serve it", name)
			continue
		}
		t.Node = prefix + `"` + name + `"`
		if !configs.IsNodeID(t.Node) {
			res.skip(r.line, "node %q (the node prefix and the name) is not an OPC UA node id", t.Node)
			continue
		}
		switch strings.ToLower(dt) {
		case "bool":
			t.Class = "equipment"
		case "time":
			t.Class = "time"
		default:
			t.Class = "process"
		}
		res.Tags = append(res.Tags, t)
	}
	return nil
}
