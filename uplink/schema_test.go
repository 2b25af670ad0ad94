package uplink

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/linegate/linegate/buffer"
)

// schemaFile is the JSON Schema of every linegate/v1 payload, for the MES
// (uplink/README.md, "JSON Schema").
const schemaFile = "schema/linegate-v1.schema.json"

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // date-time is checked, not only annotated
	sch, err := c.Compile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// validatePayload checks one payload against the schema. Numbers are kept
// as json.Number, so a uint64 counter is checked as the integer it is.
func validatePayload(sch *jsonschema.Schema, payload []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// goldenPayloads returns every golden linegate/v1 payload in the
// repository, by where it comes from: uplink's encoder goldens, the
// normalization goldens (their "T" timestamps made real), and the JSON
// lines of `linegate buffer export`.
func goldenPayloads(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, f := range files {
		out[f] = readGolden(t, filepath.Base(f))
	}

	norm, _ := filepath.Glob(filepath.Join("..", "testdata", "normalization", "*.json"))
	for _, f := range norm {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var steps []struct {
			Step      string            `json:"step"`
			Published []json.RawMessage `json:"published"`
		}
		if err := json.Unmarshal(b, &steps); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for si, s := range steps {
			for i, p := range s.Published {
				// The goldens write every timestamp as "T" (times vary).
				p = bytes.ReplaceAll(p, []byte(`"ts":"T"`), []byte(`"ts":"2026-11-27T10:15:02.123Z"`))
				out[fmt.Sprintf("%s: step %d (%s): payload %d", f, si+1, s.Step, i+1)] = p
			}
		}
	}

	export := filepath.Join("..", "cmd", "linegate", "testdata", "buffer_export.jsonl")
	fh, err := os.Open(export)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		out[fmt.Sprintf("%s:%d", export, n)] = append([]byte(nil), sc.Bytes()...)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGoldenPayloadsMatchSchema: every golden payload is valid under the
// schema, so a change to a payload that the schema does not describe
// fails here (and the schema must change with it).
func TestGoldenPayloadsMatchSchema(t *testing.T) {
	sch := compileSchema(t)
	golden := goldenPayloads(t)
	if len(golden) < 40 {
		t.Fatalf("found only %d golden payloads", len(golden))
	}
	t.Logf("%d golden payloads", len(golden))
	for name, p := range golden {
		if err := validatePayload(sch, p); err != nil {
			t.Errorf("%s: %s\n%v", name, p, err)
		}
	}
}

// TestEncodedPayloadsMatchSchema checks what the encoders write for the
// status (both states) and for one event of each type, with the
// attributes their producers give them.
func TestEncodedPayloadsMatchSchema(t *testing.T) {
	sch := compileSchema(t)
	ts := mustTime("2026-11-27T10:15:03.000Z")
	events := []buffer.Event{
		{Type: "device_down", Attrs: []buffer.Attr{{Key: "device", Value: "press01"}, {Key: "error", Value: "dial tcp 10.0.0.21:502: i/o timeout"}}},
		{Type: "device_up", Attrs: []buffer.Attr{{Key: "device", Value: "press01"}}},
		{Type: "alarm_active", Attrs: []buffer.Attr{{Key: "device", Value: "press01"}, {Key: "tag", Value: "alarms"}, {Key: "bit", Value: int64(1)}, {Key: "text", Value: "door open"}}},
		{Type: "alarm_cleared", Attrs: []buffer.Attr{{Key: "device", Value: "press01"}, {Key: "tag", Value: "alarms"}, {Key: "bit", Value: int64(1)}, {Key: "text", Value: "door open"}, {Key: "duration_s", Value: 12.5}}},
		{Type: "config_reload", Attrs: []buffer.Attr{{Key: "result", Value: "ok"}, {Key: "added", Value: []any{"press03"}}, {Key: "removed", Value: []any{}}, {Key: "restarted", Value: []any{"press02"}}}},
		{Type: "config_reload", Attrs: []buffer.Attr{{Key: "result", Value: "refused"}}},
		{Type: buffer.EventOverflow, Attrs: []buffer.Attr{{Key: "dropped_seq_from", Value: uint64(100)}, {Key: "dropped_seq_to", Value: uint64(180)}, {Key: "dropped", Value: uint64(81)}}},
		{Type: buffer.EventExpired, Attrs: []buffer.Attr{{Key: "dropped_seq_from", Value: uint64(1)}, {Key: "dropped_seq_to", Value: uint64(9)}, {Key: "dropped", Value: uint64(9)}, {Key: "max_age_s", Value: 3600.0}}},
		{Type: buffer.EventDropped, Attrs: []buffer.Attr{{Key: "reason", Value: "operator"}, {Key: "dropped_seq_from", Value: uint64(1)}, {Key: "dropped_seq_to", Value: uint64(5)}, {Key: "dropped", Value: uint64(5)}}},
		{Type: buffer.EventDropped, Attrs: []buffer.Attr{{Key: "reason", Value: "message_too_large"}, {Key: "dropped_seq_from", Value: uint64(7)}, {Key: "dropped_seq_to", Value: uint64(7)}, {Key: "dropped", Value: uint64(1)}}},
		{Type: EventReadingTooLarge, Attrs: []buffer.Attr{{Key: "device", Value: "press01"}, {Key: "tag", Value: "zones"}, {Key: "class", Value: "process"}, {Key: "reading_ts", Value: "2026-11-27T10:15:02.101Z"}, {Key: "bytes", Value: uint64(300000)}, {Key: "max_message_size", Value: uint64(262144)}}},
		{Type: buffer.EventCorrupt, Attrs: []buffer.Attr{{Key: "moved_to", Value: "/var/lib/linegate/buffer.db.corrupt-20261127T101503Z"}, {Key: "error", Value: "invalid database"}}},
		{Type: buffer.EventCorrupt, Attrs: []buffer.Attr{{Key: "error", Value: "unreadable messages deleted: crc mismatch"}, {Key: "dropped_seq_from", Value: uint64(7)}, {Key: "dropped_seq_to", Value: uint64(8)}, {Key: "dropped", Value: uint64(2)}}},
	}
	payloads := map[string][]byte{
		"status online":  StatusJSON(testGW, "online", ts, "v1.0.0"),
		"status offline": StatusJSON(testGW, "offline", ts, "dev"),
	}
	for i, e := range events {
		e.TS = ts
		payloads[fmt.Sprintf("event %d (%s)", i+1, e.Type)] = AppendEventJSON(nil, e, testGW)
	}
	for name, p := range payloads {
		if err := validatePayload(sch, p); err != nil {
			t.Errorf("%s: %s\n%v", name, p, err)
		}
	}
}

// TestSchemaRejectsDrift: payloads that differ from the contract in one
// place each are invalid, so the golden test above would catch them.
func TestSchemaRejectsDrift(t *testing.T) {
	sch := compileSchema(t)
	data := string(readGolden(t, "design_example.json"))
	status := string(readGolden(t, "status_online.json"))
	event := string(readGolden(t, "event_overflow.json"))
	for _, tc := range []struct{ name, payload string }{
		{"an unknown field", strings.Replace(data, `"historical":false`, `"historical":false,"shard":1`, 1)},
		{"a reading attribute not in the contract", strings.Replace(data, `"unit":"degC"`, `"unit":"degC","raw":17`, 1)},
		{"no seq", strings.Replace(data, `"seq":18234,`, ``, 1)},
		{"seq as a string", strings.Replace(data, `"seq":18234`, `"seq":"18234"`, 1)},
		{"another schema version", strings.Replace(data, `linegate/v1`, `linegate/v2`, 1)},
		{"an unknown quality", strings.Replace(data, `"quality":"good"`, `"quality":"ok"`, 1)},
		{"an error on a good reading", strings.Replace(data, `"quality":"good"`, `"quality":"good","error":"x"`, 1)},
		{"an unknown class", strings.Replace(data, `"class":"process"`, `"class":"energy"`, 1)},
		{"a time without milliseconds", strings.Replace(data, `"ts":"2026-11-27T10:15:02.123Z"`, `"ts":"2026-11-27T10:15:02Z"`, 1)},
		{"a local time", strings.Replace(data, `"ts":"2026-11-27T10:15:02.123Z"`, `"ts":"2026-11-27T11:15:02.123+01:00"`, 1)},
		{"an id without the seq", strings.Replace(data, `"id":"line1-pc:18234"`, `"id":"line1-pc"`, 1)},
		{"an unknown status state", strings.Replace(status, `"online"`, `"starting"`, 1)},
		{"a status without version", strings.Replace(status, `,"version":"0.1.0"`, ``, 1)},
		{"an unknown event", strings.Replace(event, `buffer_overflow`, `buffer_full`, 1)},
		{"an overflow without its range", strings.Replace(event, `"dropped_seq_from":100,`, ``, 1)},
		{"OEE inputs only in part", strings.Replace(data, `"unit":"degC"`, `"unit":"degC","run_s":20,"total_count":3`, 1)},
		{"an event with a field of another type", strings.Replace(event, `"dropped_seq_to":180`, `"dropped_seq_to":180,"device":"press01"`, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := validatePayload(sch, []byte(tc.payload)); err == nil {
				t.Errorf("valid under the schema, want invalid: %s", tc.payload)
			}
		})
	}
}
