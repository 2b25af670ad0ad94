package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/cmd/internal/agent"
)

func TestPrintCommands(t *testing.T) {
	now := time.Date(2026, 11, 27, 10, 15, 10, 0, time.UTC)
	doc := agent.Status{Gateway: "line1-pc", Devices: []agent.DeviceStatus{
		{Name: "press01", Up: true, Commands: []agent.CommandStatus{
			{ID: "mes-124", Tag: "setpoint", Result: "rejected", Error: "value 150 is outside write_range [20, 80]", Value: 150, TS: now.Add(-2 * time.Second)},
			{ID: "mes-123", Tag: "setpoint", Result: "ok", Value: 52.5, Readback: 52.5, TS: now.Add(-5 * time.Second)},
		}},
		{Name: "oven02", Up: true},
	}}
	var b bytes.Buffer
	printStatus(&b, doc, now)
	out := b.String()
	for _, want := range []string{"Commands from the MES (newest first):", "press01  setpoint  150", "rejected  mes-124", "outside write_range", "52.5   52.5", "ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	printStatus(&b, agent.Status{Devices: []agent.DeviceStatus{{Name: "oven02"}}}, now)
	if strings.Contains(b.String(), "Commands") {
		t.Errorf("a commands section without commands:\n%s", b.String())
	}
}
