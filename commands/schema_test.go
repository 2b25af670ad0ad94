package commands

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/linegate/linegate/uplink"
)

// The MES's JSON Schema (uplink/schema) describes the command, its result
// and the command event as this package writes them.
func TestPayloadsMatchSchema(t *testing.T) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	all, err := c.Compile("../uplink/schema/linegate-v1.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	cmdSchema, err := c.Compile("../uplink/schema/linegate-v1.schema.json#/$defs/cmd")
	if err != nil {
		t.Fatal(err)
	}
	check := func(sch *jsonschema.Schema, name string, payload []byte) {
		t.Helper()
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
		if err == nil {
			err = sch.Validate(v)
		}
		if err != nil {
			t.Errorf("%s: %s\n%v", name, payload, err)
		}
	}
	design := []byte(`{"schema":"linegate/v1","id":"mes-123","tag":"setpoint","value":52.5,"expires":"2026-11-27T10:15:12Z"}`)
	check(cmdSchema, "the DESIGN command", design)
	if _, err := ParseCommand(design); err != nil {
		t.Errorf("the DESIGN command: %v", err)
	}

	ts := time.Date(2026, 11, 27, 10, 15, 2, 431e6, time.UTC)
	gw := uplink.Gateway{ID: "line1-pc", Site: "plant-a", Area: "assembly", Line: "line1"}
	for _, r := range []Result{
		{ID: "mes-123", Equipment: "press01", Tag: "setpoint", Result: OK, Value: json.Number("52.5"), Readback: 52.5, TS: ts, Topic: "linegate/plant-a/assembly/line1/press01/cmd"},
		{ID: "mes-124", Equipment: "press01", Tag: "setpoint", Result: Rejected, Error: "value 150 is outside write_range [20, 80]", Value: json.Number("150"), TS: ts},
		{ID: "mes-125", Equipment: "oven02", Tag: "recipe", Result: Failed, Error: "read back PCB-4711 after writing PCB-4712 (raw)", Value: "PCB-4712", Readback: "PCB-4711", TS: ts},
		{Equipment: "press01", Result: Rejected, Error: "malformed command: unexpected EOF", TS: ts},
		{ID: "mes-126", Equipment: "press01", Tag: "reset", Result: OK, Value: true, Readback: true, TS: ts},
	} {
		check(all, "result "+r.ID, r.JSON())
		check(all, "event "+r.ID, uplink.AppendEventJSON(nil, event(r), gw))
	}
}
