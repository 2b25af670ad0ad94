package commands

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzParseCommand: any payload parses or is refused with an error, never
// a panic; a parsed command has every required field, and the tags'
// conversions take its value without a panic.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		`{"schema":"linegate/v1","id":"mes-123","tag":"setpoint","value":52.5,"expires":"2026-11-27T10:15:12Z"}`,
		`{"schema":"linegate/v1","id":"x","tag":"t","value":"text","expires":"2026-11-27T10:15:12.5+01:00"}`,
		`{"schema":"linegate/v1","id":"x","tag":"t","value":18446744073709551615,"expires":"2026-11-27T10:15:12Z"}`,
		`{"schema":"linegate/v1","id":"x","tag":"t","value":1e400,"expires":"2026-11-27T10:15:12Z"}`,
		`{"schema":"linegate/v1","id":"x","tag":"t","value":true,"expires":"2026-11-27T10:15:12Z"} {}`,
		`[]`, `null`, `{"value":[1]}`, "",
	} {
		f.Add([]byte(s))
	}
	tags := testDevices()[0].Tags
	tags = append(tags, Tag{Name: "any", Kind: KindAny, Scale: 3})
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := ParseCommand(payload)
		if err != nil {
			if r.ID != "" && !validID(r.ID) {
				t.Fatalf("invalid id %q returned", r.ID)
			}
			return
		}
		if r.ID == "" || r.Tag == "" || r.Value == nil || r.Expires.IsZero() {
			t.Fatalf("parsed without a required field: %+v", r)
		}
		switch r.Value.(type) {
		case json.Number, bool, string:
		default:
			t.Fatalf("value %T", r.Value)
		}
		for i := range tags {
			if raw, err := tags[i].rawValue(r.Value); err == nil {
				_ = tags[i].published(raw)
				_ = tags[i].sameRaw(raw, raw)
			}
		}
		_ = Result{ID: r.ID, Value: r.Value, TS: time.Now()}.JSON()
	})
}
