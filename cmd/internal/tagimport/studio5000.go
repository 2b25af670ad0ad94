package tagimport

import (
	"strings"

	"github.com/linegate/linegate/configs"
)

// logixTypes are the Logix atomic types linegate can read over OPC UA.
var logixTypes = map[string]string{
	"bool": "equipment", "sint": "process", "int": "process", "dint": "process", "lint": "process",
	"usint": "process", "uint": "process", "udint": "process", "ulint": "process",
	"real": "process", "lreal": "process", "string": "equipment",
}

// parseStudio5000 reads a Studio 5000 Logix Designer tag export (.CSV):
// "remark" lines, a version line, then TYPE,SCOPE,NAME,DESCRIPTION,
// DATATYPE,SPECIFIER,ATTRIBUTES with one TAG, ALIAS, COMMENT or RCOMMENT
// row each. A Logix controller is read through an OPC UA server (its own,
// or one in front of it); the node id is the prefix and the tag name,
// program tags as Program:<scope>.<name>.
func parseStudio5000(rows []row, res *Result, opts Options) error {
	at, h, err := findHeader(rows, "studio5000", "type", "scope", "name", "datatype")
	if err != nil {
		return err
	}
	prefix := opts.NodePrefix
	if prefix == "" {
		prefix = "ns=2;s="
	}
	for _, r := range rows[at+1:] {
		if blank(r) {
			continue
		}
		kind := strings.ToUpper(h.get(r, "type"))
		name := h.get(r, "name")
		switch kind {
		case "TAG":
		case "ALIAS":
			res.skip(r.line, "%s is an alias of %s: import the base tag", name, h.get(r, "specifier"))
			continue
		case "COMMENT", "RCOMMENT":
			res.skip(r.line, "a comment on %s, not a tag", name)
			continue
		default:
			res.skip(r.line, "row type %q is not a tag", h.get(r, "type"))
			continue
		}
		full := name
		if scope := h.get(r, "scope"); scope != "" {
			full = "Program:" + scope + "." + name
		}
		dt := h.get(r, "datatype")
		class, ok := logixTypes[strings.ToLower(dt)]
		if !ok {
			res.skip(r.line, "%s: data type %q is not mapped (arrays, UDTs and AOIs: browse them with linegate opcua browse --yaml)", full, dt)
			continue
		}
		t := Tag{Line: r.line, Bit: -1, Name: TagName(strings.TrimPrefix(full, "Program:")), Class: class}
		if t.Name == "" {
			res.skip(r.line, "no tag name")
			continue
		}
		if t.Name != full {
			t.Comment = full
		}
		if d := h.get(r, "description"); d != "" {
			t.Comment = d
		}
		t.Node = prefix + full
		if !configs.IsNodeID(t.Node) {
			res.skip(r.line, "node %q (the node prefix and the name) is not an OPC UA node id", t.Node)
			continue
		}
		res.Tags = append(res.Tags, t)
	}
	return nil
}
