package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/internal/testkit"
	"github.com/linegate/linegate/testdata/peers"
)

// cmdACL lets only the MES user publish commands; the gateway may read
// them and write its own topics (commands/README.md has it too).
const cmdACL = `user linegate
topic write linegate/plant-a/assembly/line1/+/process
topic write linegate/plant-a/assembly/line1/+/equipment
topic write linegate/plant-a/assembly/line1/+/time
topic readwrite linegate/plant-a/assembly/line1/_gateway/line1-pc/#
topic read linegate/plant-a/assembly/line1/+/cmd

user mes
topic read linegate/#
topic write linegate/plant-a/assembly/line1/+/cmd

user viewer
topic read linegate/#
`

const cmdConfig = `gateway: {id: line1-pc, site: plant-a, area: assembly, line: line1}
buffer: {path: %[1]s/buffer.db, commit_interval: 20ms}
uplink: {brokers: [tcp://%[2]s], username: linegate, password: gw-pass, commands: true, reconnect_max: 1s}
http: {listen: ""}
devices:
  - name: press01
    driver: modbus
    address: tcp://%[3]s
    poll_interval: 200ms
    timeout: 500ms
    commands: true
    tags:
      - {name: setpoint, class: process, register: holding, address: 0, type: float32, unit: degC, writable: true, write_range: [0, 100]}
      - {name: speed, class: process, register: holding, address: 2, type: int16, scale: 0.1, unit: rpm, writable: true}
      - {name: reset, class: equipment, register: coil, address: 1, writable: true}
      - {name: temperature, class: process, register: holding, address: 4, type: int16}
  - name: oven02
    driver: opcua
    endpoint: %[4]s
    mode: poll
    poll_interval: 200ms
    commands: true
    max_commands_per_s: 50
    pki_dir: %[1]s/pki
    tags:
      - {name: setpoint, class: process, node: "ns=1;s=Quiet.Setpoint", writable: true, write_range: [0, 300]}
      - {name: recipe, class: process, node: "ns=1;s=Oven.Recipe", writable: true}
      - {name: locked, class: process, node: "ns=1;s=Quiet.Locked", writable: true}
      - {name: mode, class: process, browse_path: Objects/1:Line1/1:Quiet/1:Mode, writable: true}
      - {name: batch, class: process, node: "ns=1;s=Quiet.Batch", writable: true}
      - {name: plant_a, class: process, node: "nsu=urn:linegate:plant;s=Plant.A", writable: true}
  - name: press02
    driver: modbus
    address: tcp://%[5]s
    poll_interval: 200ms
    timeout: 200ms
    commands: true
    tags:
      - {name: setpoint, class: process, register: holding, address: 0, type: float32, writable: true}
`

// mesClient publishes commands as user and collects the results.
type mesClient struct {
	c       paho.Client
	mu      sync.Mutex
	results []map[string]any
	events  []map[string]any // command events
}

func newMES(t *testing.T, addr, user string) *mesClient {
	t.Helper()
	m := &mesClient{}
	opts := paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(fmt.Sprintf("%s-%d", user, time.Now().UnixNano())).
		SetUsername(user).SetPassword(user + "-pass").SetCleanSession(true).SetAutoReconnect(false).SetProtocolVersion(4)
	m.c = paho.NewClient(opts)
	if tok := m.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("%s connect: %v", user, tok.Error())
	}
	t.Cleanup(func() { m.c.Disconnect(100) })
	tok := m.c.Subscribe("linegate/plant-a/assembly/line1/_gateway/line1-pc/+", 1, func(_ paho.Client, msg paho.Message) {
		var r map[string]any
		if json.Unmarshal(msg.Payload(), &r) != nil {
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		switch {
		case strings.HasSuffix(msg.Topic(), "/cmd_result"):
			m.results = append(m.results, r)
		case strings.HasSuffix(msg.Topic(), "/events") && r["event"] == "command":
			m.events = append(m.events, r)
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("%s subscribe: %v", user, tok.Error())
	}
	return m
}

func (m *mesClient) publish(t *testing.T, equipment, payload string) {
	t.Helper()
	tok := m.c.Publish("linegate/plant-a/assembly/line1/"+equipment+"/cmd", 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

// send publishes a command and returns its n-th result for id (1-based:
// a duplicate id gets a second one).
func (m *mesClient) send(t *testing.T, equipment, id, tag, value string, expires time.Time, n int) map[string]any {
	t.Helper()
	m.publish(t, equipment, fmt.Sprintf(`{"schema":"linegate/v1","id":%q,"tag":%q,"value":%s,"expires":%q}`, id, tag, value, expires.UTC().Format(time.RFC3339Nano)))
	var got map[string]any
	testkit.WaitFor(t, 20*time.Second, "result of "+id, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		k := 0
		for _, r := range m.results {
			if r["id"] == id {
				if k++; k == n {
					got = r
					return true
				}
			}
		}
		return false
	})
	return got
}

func (m *mesClient) resultsFor(id string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.results {
		if r["id"] == id {
			n++
		}
	}
	return n
}

// runAgent runs an agent on cfgText until the returned stop is called.
func runAgent(t *testing.T, cfgText string) (*Agent, func()) {
	t.Helper()
	cfg, err := configs.Parse("linegate.yaml", []byte(cfgText), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, slog.New(slog.DiscardHandler), Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}
	t.Cleanup(stop)
	testkit.WaitFor(t, 30*time.Second, "agent connected, press01 and oven02 up", func() bool {
		st := a.Status()
		up := 0
		for _, d := range st.Devices {
			if d.Up {
				up++
			}
		}
		return st.Uplink.Connected && up == 2
	})
	return a, stop
}

func wantResult(t *testing.T, what string, r map[string]any, result, errText string) {
	t.Helper()
	e, _ := r["error"].(string)
	if r["result"] != result || !strings.Contains(e, errText) {
		t.Errorf("%s: result %v (%q), want %s with %q", what, r["result"], e, result, errText)
	}
}

// plc reads the PLC side with mbpoll (an independent Modbus client).
func plc(t *testing.T, addr string, args ...string) string {
	t.Helper()
	v, err := peers.Mbpoll(t, addr, args...)
	if err != nil {
		t.Fatalf("mbpoll %v: %v", args, err)
	}
	for _, s := range v {
		return s
	}
	t.Fatalf("mbpoll %v: no value", args)
	return ""
}

// TestInteropCommands: the MES writes through a real Mosquitto whose ACL
// lets only it publish commands, to pymodbus and node-opcua; the PLC side
// is read back by mbpoll and a node-opcua client. Each refused command
// (expired, duplicate id, replayed after a restart, out of range, not
// writable, device down (never configured right, or a PLC that stopped
// answering), from a user the ACL refuses) leaves the PLC as it was.
func TestInteropCommands(t *testing.T) {
	peers.Interop(t)
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	for i, u := range []string{"linegate", "mes", "viewer"} {
		args := []string{"-b", pw, u, u + "-pass"}
		if i == 0 {
			args = append([]string{"-c"}, args...)
		}
		if u == "linegate" {
			args[len(args)-1] = "gw-pass"
		}
		if out, err := exec.Command("mosquitto_passwd", args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v: %s", err, out)
		}
	}
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte(cmdACL), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testkit.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	broker := peers.StartMosquitto(t, peers.MosquittoOptions{
		GlobalConfig: "per_listener_settings true",
		ExtraConfig:  fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\nacl_file %s\n", port, pw, acl),
	})
	testkit.WaitFor(t, 10*time.Second, "ACL listener", func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	mb := peers.StartPymodbus(t, peers.PymodbusSpec{Units: map[byte]peers.UnitSpec{1: {Holding: map[uint16]uint16{4: 7}, Size: 32}}})
	ua := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true})
	dead := testkit.FreePort(t) // nothing listens: press02 is down
	cfgText := fmt.Sprintf(cmdConfig, dir, addr, mb.Addr, ua.Endpoint, fmt.Sprintf("127.0.0.1:%d", dead))
	a, stop := runAgent(t, cfgText)
	mes := newMES(t, addr, "mes")
	soon := func() time.Time { return time.Now().Add(30 * time.Second) }

	// Accepted: ok only after the read-back, and the PLC holds the value.
	r := mes.send(t, "press01", "c1", "setpoint", "52.5", soon(), 1)
	wantResult(t, "float32", r, "ok", "")
	if r["readback"] != 52.5 || r["equipment"] != "press01" || r["tag"] != "setpoint" {
		t.Errorf("result %v", r)
	}
	if v := plc(t, mb.Addr, "-a", "1", "-r", "1", "-c", "1", "-t", "4:float", "-B"); v != "52.5" {
		t.Errorf("PLC setpoint %s, want 52.5", v)
	}
	wantResult(t, "scaled", mes.send(t, "press01", "c2", "speed", "52.3", soon(), 1), "ok", "")
	if v := plc(t, mb.Addr, "-a", "1", "-r", "3", "-c", "1", "-t", "4"); v != "523" {
		t.Errorf("PLC speed raw %s, want 523 (52.3 with scale 0.1)", v)
	}
	wantResult(t, "coil", mes.send(t, "press01", "c3", "reset", "true", soon(), 1), "ok", "")
	if v := plc(t, mb.Addr, "-a", "1", "-r", "2", "-c", "1", "-t", "0"); v != "1" {
		t.Errorf("PLC coil %s, want 1", v)
	}
	r = mes.send(t, "oven02", "c4", "setpoint", "200.25", soon(), 1)
	wantResult(t, "opcua", r, "ok", "")
	if r["readback"] != 200.25 {
		t.Errorf("OPC UA read back %v", r["readback"])
	}
	// The node's data type decides: an Int32 found by browse path takes a
	// whole number, a String a string, a Double by namespace URI an integer.
	wantResult(t, "opcua Int32", mes.send(t, "oven02", "c8", "mode", "8", soon(), 1), "ok", "")
	wantResult(t, "opcua String", mes.send(t, "oven02", "c9", "batch", `"B-0816"`, soon(), 1), "ok", "")
	wantResult(t, "opcua nsu", mes.send(t, "oven02", "c10", "plant_a", "4", soon(), 1), "ok", "")
	wantResult(t, "opcua fraction for Int32", mes.send(t, "oven02", "x6", "mode", "3.5", soon(), 1), "rejected", "3.5 does not fit Int32")
	wantResult(t, "opcua number for String", mes.send(t, "oven02", "x7", "batch", "1", soon(), 1), "rejected", "a String node takes a string")
	// The server refuses: its StatusCode is the reason.
	wantResult(t, "opcua read-only node", mes.send(t, "oven02", "c5", "locked", "6", soon(), 1), "failed", "BadNotWritable")
	// The server answers Good but keeps its value (a variable with a
	// getter only): the read-back tells.
	wantResult(t, "opcua write ignored", mes.send(t, "oven02", "c7", "recipe", `"PCB-4712"`, soon(), 1), "failed", "read back PCB-4711 after writing PCB-4712")

	// Refused, nothing written.
	wantResult(t, "expired", mes.send(t, "press01", "x1", "setpoint", "10", time.Now().Add(-time.Second), 1), "rejected", "expired at")
	wantResult(t, "duplicate", mes.send(t, "press01", "c1", "setpoint", "11", soon(), 2), "rejected", "duplicate id")
	wantResult(t, "out of range", mes.send(t, "press01", "x2", "setpoint", "150", soon(), 1), "rejected", "outside write_range [0, 100]")
	wantResult(t, "not writable", mes.send(t, "press01", "x3", "temperature", "1", soon(), 1), "rejected", "not writable")
	wantResult(t, "device down", mes.send(t, "press02", "x4", "setpoint", "1", soon(), 1), "rejected", "device down")
	wantResult(t, "opcua out of range", mes.send(t, "oven02", "x5", "setpoint", "301", soon(), 1), "rejected", "outside write_range")

	// A user the ACL does not let publish commands: the broker drops it.
	viewer := newMES(t, addr, "viewer")
	viewer.publish(t, "press01", fmt.Sprintf(`{"schema":"linegate/v1","id":"evil","tag":"setpoint","value":77,"expires":%q}`, soon().Format(time.RFC3339)))
	// A command after it: once its result is in, the dropped one would
	// have been handled too (one broker, one subscription, in order).
	wantResult(t, "after the refused user", mes.send(t, "press01", "c6", "setpoint", "53", soon(), 1), "ok", "")
	if n := mes.resultsFor("evil"); n != 0 {
		t.Errorf("a command from a user without write on cmd topics got %d results", n)
	}

	// /status shows the device's last commands, newest first.
	var press01 DeviceStatus
	for _, d := range a.Status().Devices {
		if d.Name == "press01" {
			press01 = d
		}
	}
	if len(press01.Commands) == 0 || press01.Commands[0].ID != "c6" || press01.Commands[0].Result != "ok" {
		t.Errorf("status commands of press01: %+v", press01.Commands)
	}

	// The audit: a command event per command, from the buffer; the
	// metrics by result.
	testkit.WaitFor(t, 10*time.Second, "the command events", func() bool {
		mes.mu.Lock()
		defer mes.mu.Unlock()
		return len(mes.events) >= len(mes.results)
	})
	mes.mu.Lock()
	var ev map[string]any
	for _, e := range mes.events {
		if e["id"] == "c1" {
			ev = e // the first; the duplicate's comes later
			break
		}
	}
	mes.mu.Unlock()
	if ev == nil || ev["topic"] != "linegate/plant-a/assembly/line1/press01/cmd" || ev["result"] != "ok" || ev["value"] != 52.5 || ev["readback"] != 52.5 {
		t.Errorf("command event of c1: %v", ev)
	}
	counts := map[string]float64{}
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "linegate_commands_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" {
					counts[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	if counts["ok"] != 8 || counts["failed"] != 2 || counts["rejected"] != 8 {
		t.Errorf("linegate_commands_total by result %v, want ok 8, failed 2, rejected 8", counts)
	}

	// The PLC stops answering: a command is refused at once, not queued
	// for when it is back (the final mbpoll read shows it never came).
	mb.Mute(1)
	testkit.WaitFor(t, 20*time.Second, "press01 down", func() bool {
		for _, d := range a.Status().Devices {
			if d.Name == "press01" {
				return !d.Up
			}
		}
		return false
	})
	wantResult(t, "PLC down", mes.send(t, "press01", "x8", "setpoint", "60", soon(), 1), "rejected", "device down")
	mb.Unmute(1)

	// Restart (a new process and connection): a replay of an id already
	// handled is refused, the ledger outlived both.
	stop()
	runAgent(t, cfgText)
	wantResult(t, "replay after restart", mes.send(t, "press01", "c2", "speed", "99", soon(), 2), "rejected", "duplicate id")

	if v := plc(t, mb.Addr, "-a", "1", "-r", "1", "-c", "1", "-t", "4:float", "-B"); v != "53" {
		t.Errorf("PLC setpoint %s, want 53 (the refused commands wrote nothing)", v)
	}
	if v := plc(t, mb.Addr, "-a", "1", "-r", "3", "-c", "1", "-t", "4"); v != "523" {
		t.Errorf("PLC speed raw %s, want 523 (the replay wrote nothing)", v)
	}
	if v := plc(t, mb.Addr, "-a", "1", "-r", "5", "-c", "1", "-t", "4"); v != "7" {
		t.Errorf("PLC temperature %s, want 7 (not writable)", v)
	}
	// The OPC UA side, by node-opcua's own client (one run: each costs
	// seconds): the accepted write holds, the refused and ignored ones
	// changed nothing, nor did the out-of-range one.
	got := peers.OPCUARead(t, ua.Endpoint, "ns=1;s=Quiet.Setpoint", "ns=1;s=Oven.Recipe", "ns=1;s=Quiet.Locked", "ns=1;s=Quiet.Mode", "ns=1;s=Quiet.Batch")
	if v := got["ns=1;s=Quiet.Setpoint"]; v.Value != 200.25 || v.Type != "Double" {
		t.Errorf("OPC UA setpoint %+v, want Double 200.25", v)
	}
	if v := got["ns=1;s=Quiet.Mode"]; v.Value != 8.0 || v.Type != "Int32" {
		t.Errorf("OPC UA mode %+v, want Int32 8 (the 3.5 refused)", v)
	}
	if v := got["ns=1;s=Quiet.Batch"]; v.Value != "B-0816" {
		t.Errorf("OPC UA batch %+v, want B-0816", v)
	}
	if got["ns=1;s=Oven.Recipe"].Value != "PCB-4711" || got["ns=1;s=Quiet.Locked"].Value != 5.0 {
		t.Errorf("OPC UA recipe and locked %+v, want unchanged", got)
	}
	_ = broker
}
