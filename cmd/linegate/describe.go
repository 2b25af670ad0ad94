package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

type demoPayload struct {
	Seq       uint64           `json:"seq"`
	Equipment string           `json:"equipment"`
	Class     string           `json:"class"`
	TS        string           `json:"ts"`
	Hist      bool             `json:"historical"`
	Readings  []map[string]any `json:"readings"`
	State     string           `json:"state"`
	Event     string           `json:"event"`
}

// describe renders one payload as a line a person can read.
func describe(topic string, payload []byte) string {
	var m demoPayload
	if err := json.Unmarshal(payload, &m); err != nil {
		return fmt.Sprintf("%s: unreadable payload: %v", topic, err)
	}
	ts := m.TS
	if t, err := time.Parse(time.RFC3339Nano, m.TS); err == nil {
		ts = t.Local().Format("15:04:05.000")
	}
	switch {
	case strings.HasSuffix(topic, "/status"):
		return fmt.Sprintf("%s  gateway %s", ts, m.State)
	case m.Event != "":
		var attrs map[string]any
		_ = json.Unmarshal(payload, &attrs)
		var kv []string
		for _, k := range []string{"device", "error", "dropped_seq_from", "dropped_seq_to"} {
			if v, ok := attrs[k]; ok {
				kv = append(kv, fmt.Sprintf("%s=%v", k, v))
			}
		}
		return fmt.Sprintf("%s  event %s %s", ts, m.Event, strings.Join(kv, " "))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-9s %-10s seq %-5d", ts, m.Equipment, m.Class, m.Seq)
	if m.Hist {
		b.WriteString(" (historical)")
	}
	for _, r := range m.Readings {
		fmt.Fprintf(&b, "  %v=", r["tag"])
		if q, _ := r["quality"].(string); q != "good" {
			fmt.Fprintf(&b, "%s(%v)", strings.ToUpper(q), r["error"])
			continue
		}
		switch v := r["value"].(type) {
		case string:
			b.WriteString(strconv.Quote(v))
		default:
			fmt.Fprintf(&b, "%v", v)
		}
		if u, ok := r["unit"].(string); ok {
			b.WriteString(" " + u)
		}
		if d, ok := r["delta"]; ok {
			fmt.Fprintf(&b, " (+%v)", d)
		}
	}
	return b.String()
}
