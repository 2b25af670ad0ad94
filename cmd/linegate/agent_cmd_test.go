package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/cmd/internal/agent"
)

// toolsConfig is a config against a frozen simulator: press01 is fully
// readable, press09 (unit 9) never answers.
const toolsConfig = `gateway: {id: tools-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: %s, commit_interval: 20ms}
uplink: {brokers: [%s]}
http: {listen: "%s"}
devices:
  - name: press01
    driver: modbus
    address: tcp://%s
    unit_id: 1
    poll_interval: 100ms
    timeout: 500ms
    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC, deadband: 100}
      - {name: speed, class: process, register: input, address: 4, type: int16, scale: 0.1, unit: rpm}
      - {name: recipe, class: equipment, register: holding, address: 50, type: string, length: 4}
      - {name: door_open, class: equipment, register: discrete, address: 0, type: bool}
%s`

const deadDevice = `  - name: press09
    driver: modbus
    address: tcp://%s
    unit_id: 9
    poll_interval: 100ms
    timeout: 100ms
    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}
`

func toolsConfigFile(t *testing.T, sim, broker, httpAddr string, withDead bool) string {
	extra := ""
	if withDead {
		extra = fmt.Sprintf(deadDevice, sim)
	}
	return writeFile(t, "tools.yaml", fmt.Sprintf(toolsConfig, filepath.Join(t.TempDir(), "buffer.db"), broker, httpAddr, sim, extra))
}

func TestTagsOnce(t *testing.T) {
	line := frozenLine(t, 1)
	good := toolsConfigFile(t, line.Addr(), "tcp://127.0.0.1:1", "", false)
	withDead := toolsConfigFile(t, line.Addr(), "tcp://127.0.0.1:1", "", true)

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"all good", []string{"tags", "-c", good, "--once"}, exitOK, []string{
			"DEVICE   TAG          CLASS      VALUE     UNIT  AGE",
			"press01  temperature  process    23.5      degC",
			"press01  speed        process    120.3     rpm",
			`press01  recipe       equipment  "ABC-01"  -`,
			"press01  door_open    equipment  true      -",
		}, nil},
		{"one device", []string{"tags", "-c", withDead, "--once", "--device", "press01"}, exitOK, []string{"press01  temperature"}, nil},
		{"dead device", []string{"tags", "-c", withDead, "--once", "--log-level", "error"}, exitFailed, []string{"press09  temperature  process    -         degC", "bad: read holding 0x0000+2: i/o timeout"}, []string{"1 of 5 tag(s) not good"}},
		{"unknown device", []string{"tags", "-c", good, "--device", "nope"}, exitUsage, nil, []string{"--device nope: no such device"}},
		{"no config", []string{"tags"}, exitUsage, nil, []string{"-c/--config FILE is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runCLI(t, tt.args, tt.code, tt.stdout, tt.stderr)
		})
	}

	code, out, errOut := run(t, "tags", "-c", good, "--once", "--json")
	var rows []tagDoc
	if code != exitOK || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 4 || rows[0].Value != 23.5 || rows[0].Quality != "good" || rows[0].TS == nil {
		t.Fatalf("exit %d %s\n%s", code, out, errOut)
	}
}

// TestTagsLivePiped: piped, each new reading is one plain line.
func TestTagsLivePiped(t *testing.T) {
	line := frozenLine(t, 1)
	cfg := toolsConfigFile(t, line.Addr(), "tcp://127.0.0.1:1", "", false)
	out, stop := startCmd(t, "tags", "-c", cfg, "--refresh", "20ms")
	testkit.WaitFor(t, 10*time.Second, "two readings of temperature", func() bool {
		return strings.Count(out.String(), "press01/temperature = 23.5 degC good") >= 2
	})
	if code := stop(); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Fatalf("ANSI codes in piped output:\n%q", out.String())
	}
}

func TestCheckConnect(t *testing.T) {
	line := frozenLine(t, 1)
	broker, err := startBroker("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	good := toolsConfigFile(t, line.Addr(), "tcp://"+broker.addr, "", false)
	bad := toolsConfigFile(t, line.Addr(), "tcp://127.0.0.1:"+fmt.Sprint(testkit.FreePort(t)), "", true)

	code, out, errOut := run(t, "check", "-c", good, "--connect")
	if code != exitOK || !strings.Contains(out, "PASS  device press01") || !strings.Contains(out, "PASS  broker tcp://"+broker.addr) {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(t, "check", "-c", bad, "--connect")
	for _, s := range []string{"PASS  device press01", "FAIL  device press09", "read holding 0x0000+2: i/o timeout", "FAIL  broker tcp://127.0.0.1:", "connection refused"} {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %q", s)
		}
	}
	if code != exitFailed || !strings.Contains(errOut, "something failed") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	// Without --connect nothing is contacted: the same config is valid.
	if code, _, _ := run(t, "check", "-c", bad); code != exitOK {
		t.Fatalf("check without --connect: exit %d", code)
	}
}

func TestStatusCommand(t *testing.T) {
	line := frozenLine(t, 1)
	broker, err := startBroker("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	cfg := toolsConfigFile(t, line.Addr(), "tcp://"+broker.addr, httpAddr, false)
	startRun(t, cfg)
	testkit.WaitFor(t, 20*time.Second, "the agent up and connected", func() bool {
		code, _, _ := run(t, "status", "--addr", httpAddr)
		return code == exitOK
	})
	code, out, errOut := run(t, "status", "-c", cfg)
	for _, s := range []string{"gateway tools-gw (version dev)", "DEVICE   STATE  LAST GOOD READ", "press01  up", "uplink  connected to tcp://" + broker.addr, "buffer  ",
		"Modbus links (last minute):\n  tcp://" + line.Addr(), "% busy", "press01 (unit 1)", "polls/s"} {
		if !strings.Contains(out, s) {
			t.Errorf("stdout lacks %q:\n%s", s, out)
		}
	}
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	code, out, _ = run(t, "status", "--addr", httpAddr, "--json")
	var doc agent.Status
	if code != exitOK || json.Unmarshal([]byte(out), &doc) != nil || doc.Gateway != "tools-gw" || len(doc.Devices) != 1 || doc.Devices[0].LastPoll == nil {
		t.Fatalf("exit %d: %s", code, out)
	}
	if l := doc.ModbusLinks; len(l) != 1 || len(l[0].Devices) != 1 || l[0].Devices[0].Name != "press01" || l[0].Devices[0].PollsPerSecond <= 0 || l[0].Utilisation <= 0 {
		t.Errorf("modbus_links %+v", doc.ModbusLinks)
	}

	// The buffer commands refuse the running agent's file and point here.
	code, _, errOut = run(t, "buffer", "stats", "-c", cfg)
	if code != exitFailed || !strings.Contains(errOut, "see linegate status") {
		t.Fatalf("buffer stats while running: exit %d %s", code, errOut)
	}

	dead := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	code, _, errOut = run(t, "status", "--addr", dead)
	if code != exitFailed || !strings.Contains(errOut, "no linegate answers on "+dead) {
		t.Fatalf("no agent: exit %d %s", code, errOut)
	}
}
