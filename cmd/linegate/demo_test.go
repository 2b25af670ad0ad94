package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// The first state_time_unknown is explained once: hours of "unknown" in the
// demo's first message look like a fault.
func TestDemoExplainsStateTimeUnknown(t *testing.T) {
	var out bytes.Buffer
	p := &demoPrinter{w: &out}
	msg := []byte(`{"schema":"linegate/v1","gateway":"demo-pc","equipment":"press01","class":"time","seq":3,"id":"demo-pc:3","historical":false,"ts":"2026-12-04T03:20:47.001Z","readings":[{"tag":"state_time_unknown","value":22847.001,"unit":"s","quality":"good","ts":"2026-12-04T03:20:47.001Z"}]}`)
	p.print("linegate/demo-plant/pressing/line1/press01/time", msg)
	p.print("linegate/demo-plant/pressing/line1/press01/time", msg)
	if got := strings.Count(out.String(), "state_time_unknown: the part of the current shift before linegate started"); got != 1 {
		t.Errorf("explained %d times:\n%s", got, out.String())
	}
}

// make demo runs the built binary: under "go run", Ctrl-C made the go
// command report the interrupted child as an error to make.
func TestMakeDemoRunsTheBinary(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	_, recipe, ok := strings.Cut(string(mk), "\ndemo: build\n")
	recipe, _, _ = strings.Cut(recipe, "\n\n")
	if !ok || !strings.Contains(recipe, "$(BIN) demo") || strings.Contains(recipe, "go run") || strings.Contains(recipe, "$(GO) run") {
		t.Errorf("the demo target does not build bin/linegate and run it:\n%s", recipe)
	}
}
