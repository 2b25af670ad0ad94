package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/drivers/sim"
)

const reloadConfigHead = `gateway: {id: reload-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: %s}
uplink: {brokers: [tcp://%s], max_inflight: %d}
http: {listen: ""}
devices:
`

// reloadDevice is one simulated press; unit and poll interval vary.
func reloadDevice(name string, unit int, poll string) string {
	return fmt.Sprintf(`  - name: %s
    driver: modbus
    address: tcp://%%[1]s
    unit_id: %d
    poll_interval: %s
    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}
`, name, unit, poll)
}

type reloadEvent struct {
	Event     string   `json:"event"`
	Result    string   `json:"result"`
	Added     []string `json:"added"`
	Removed   []string `json:"removed"`
	Restarted []string `json:"restarted"`
}

// TestReloadLive runs the real binary and reloads it: a bad file and a
// change that needs a restart are refused while the old config keeps
// running; a good file restarts only the changed device, adds and removes
// devices, keeps the MQTT session (one online status, seq without a gap)
// and publishes config_reload events.
func TestReloadLive(t *testing.T) {
	bin := linegateBinary(t)
	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: []byte{1, 2}})
	if err := line.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Stop() })
	broker, err := startBroker("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	mes := subscribe(t, "tcp://"+broker.addr, "linegate/#")

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "linegate.yaml")
	buf := filepath.Join(dir, "buffer.db")
	write := func(inflight int, extra string, devices ...string) {
		t.Helper()
		text := fmt.Sprintf(reloadConfigHead, buf, broker.addr, inflight) + extra + fmt.Sprintf(strings.Join(devices, ""), line.Addr())
		if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	reload := func() (int, string) {
		out, err := exec.Command(bin, "reload", "-c", cfgPath).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	events := func() []reloadEvent {
		var out []reloadEvent
		for _, m := range mes.all() {
			if strings.HasSuffix(m.topic, "/_gateway/reload-gw/events") {
				var e reloadEvent
				if json.Unmarshal(m.payload, &e) == nil && e.Event == "config_reload" {
					out = append(out, e)
				}
			}
		}
		return out
	}
	seen := func(equipment string, after int) bool {
		for _, m := range mes.all()[after:] {
			if strings.Contains(m.topic, "/"+equipment+"/process") {
				return true
			}
		}
		return false
	}

	write(64, "", reloadDevice("press01", 1, "100ms"), reloadDevice("press02", 2, "100ms"), reloadDevice("press04", 2, "100ms"))
	agent := startBinary(t, bin, "run", "-c", cfgPath, "--log-format", "json")
	testkit.WaitFor(t, 20*time.Second, "every device publishing", func() bool {
		return seen("press01", 0) && seen("press02", 0) && seen("press04", 0)
	})
	if _, err := os.Stat(filepath.Join(dir, "linegate.pid")); err != nil {
		t.Fatalf("no pid file beside the buffer: %v", err)
	}

	// A file that does not validate: `reload` refuses it before signalling.
	write(64, "", reloadDevice("press01", 1, "100ms")+"    bogus_key: 1\n")
	if code, out := reload(); code != exitUsage || !strings.Contains(out, `unknown key "bogus_key"`) {
		t.Fatalf("reload of a bad file: exit %d, %s", code, out)
	}
	// A bad file reaching the agent by SIGHUP: refused, the old one runs on.
	agent.cmd.Process.Signal(syscall.SIGHUP)
	testkit.WaitFor(t, 10*time.Second, "a refused reload event", func() bool { return len(events()) == 1 })
	// A change of the uplink section: refused, restart needed.
	write(32, "", reloadDevice("press01", 1, "100ms"), reloadDevice("press02", 2, "100ms"), reloadDevice("press04", 2, "100ms"))
	if code, out := reload(); code != 0 {
		t.Fatalf("reload: exit %d: %s", code, out)
	}
	testkit.WaitFor(t, 10*time.Second, "a second refused reload event", func() bool { return len(events()) == 2 })
	for _, e := range events() {
		if e.Result != "refused" {
			t.Fatalf("event %+v, want refused", e)
		}
	}
	mark := len(mes.all())
	testkit.WaitFor(t, 10*time.Second, "the old config running on", func() bool { return seen("press04", mark) && seen("press02", mark) })

	// A good change: press01 unchanged (moved down a line by a comment),
	// press02 restarted (new interval), press04 removed, press03 added.
	write(64, "# reloaded\n", reloadDevice("press01", 1, "100ms"), reloadDevice("press02", 2, "150ms"), reloadDevice("press03", 1, "100ms"))
	if code, out := reload(); code != 0 || !strings.Contains(out, "asked linegate") {
		t.Fatalf("reload: exit %d: %s", code, out)
	}
	testkit.WaitFor(t, 10*time.Second, "the config_reload event", func() bool { return len(events()) == 3 })
	e := events()[2]
	if e.Result != "ok" || !slices.Equal(e.Added, []string{"press03"}) || !slices.Equal(e.Removed, []string{"press04"}) || !slices.Equal(e.Restarted, []string{"press02"}) {
		t.Fatalf("reload event %+v", e)
	}
	mark = len(mes.all())
	testkit.WaitFor(t, 10*time.Second, "press03 publishing", func() bool { return seen("press03", mark) && seen("press01", mark) && seen("press02", mark) })
	stopBinary(t, agent)
	if !strings.Contains(agent.stderr.String(), "the uplink section changed: restart linegate to apply it") {
		t.Fatalf("agent log does not say why the reload was refused:\n%s", agent.stderr)
	}

	// One session throughout: one online status, and seq has no gap.
	online := 0
	for _, m := range mes.all() {
		if strings.HasSuffix(m.topic, "/status") && strings.Contains(string(m.payload), `"online"`) {
			online++
		}
	}
	if online != 1 {
		t.Fatalf("%d online statuses: the MQTT session was not kept", online)
	}
	data := mes.data(t)
	var seqs []uint64
	for s := range data {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if s != seqs[0]+uint64(i) {
			t.Fatalf("seq gap at %d: %v", s, seqs[max(0, i-3):min(len(seqs), i+3)])
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "linegate.pid")); !os.IsNotExist(err) {
		t.Fatalf("pid file left behind: %v", err)
	}
}

// TestReloadWithoutAgent: reload names the missing pid file.
func TestReloadWithoutAgent(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "linegate.yaml")
	text := fmt.Sprintf(reloadConfigHead, filepath.Join(dir, "b.db"), "127.0.0.1:1", 64) + fmt.Sprintf(reloadDevice("p", 1, "1s"), "127.0.0.1:1")
	if err := os.WriteFile(cfgPath, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, pid, want string
	}{
		{"no pid file", "", "linegate.pid does not exist"},
		{"garbage", "x\n", "holds no pid"},
		{"not linegate", fmt.Sprint(os.Getppid()), "not linegate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(filepath.Join(dir, "linegate.pid"))
			if tc.pid != "" {
				if err := os.WriteFile(filepath.Join(dir, "linegate.pid"), []byte(tc.pid), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var out strings.Builder
			code := execute(context.Background(), []string{"reload", "-c", cfgPath}, &out, &out)
			if code == 0 || !strings.Contains(out.String(), tc.want) {
				t.Fatalf("exit %d: %s (want %q)", code, out.String(), tc.want)
			}
		})
	}
}
