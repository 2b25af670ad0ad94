package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/drivers/sim"
)

const opcuaE2EConfig = `gateway: {id: e2e-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: %s, commit_interval: 20ms}
uplink: {brokers: [tcp://%s]}
http: {listen: ""}
devices:
  - name: oven01
    driver: opcua
    endpoint: %s
    mode: %s
    poll_interval: 200ms
    timeout: 1s
    tags:
      - {name: zone1_temp, class: process, node: "ns=1;s=Oven01.Zone1.Temperature", unit: degC}
      - {name: zone2_temp, class: process, browse_path: Objects/Oven01/Zone2/Temperature, unit: degC}
      - {name: sensor4, class: process, node: "ns=1;s=Oven01.Sensor4"}
      - {name: state, class: equipment, node: "ns=1;s=Oven01.State", states: {0: stopped, 1: heating, 2: running}}
      - {name: recipe, class: equipment, node: "ns=1;s=Oven01.Recipe"}
      - {name: cycle_time, class: time, node: "ns=1;s=Oven01.CycleTime", unit: ms}
`

// TestOPCUAEndToEnd runs `linegate run` against the simulated oven in both
// modes: readings reach the MES, a bad node is bad alone, and a server
// restart is a device_down and a device_up event.
func TestOPCUAEndToEnd(t *testing.T) {
	for _, mode := range []string{"subscribe", "poll"} {
		t.Run(mode, func(t *testing.T) {
			oven := sim.NewOven(sim.OvenOptions{})
			if err := oven.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(oven.Stop)
			broker, err := startBroker("127.0.0.1:0", nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { broker.Close() })
			mes := subscribe(t, "tcp://"+broker.addr, "linegate/#")

			dir := t.TempDir()
			cfgPath := filepath.Join(dir, "linegate.yaml")
			cfg := fmt.Sprintf(opcuaE2EConfig, filepath.Join(dir, "buffer.db"), broker.addr, oven.Endpoint(), mode)
			if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			startRun(t, cfgPath)

			has := func(topicEnd string, parts ...string) bool {
				for _, m := range mes.all() {
					if !strings.HasSuffix(m.topic, topicEnd) {
						continue
					}
					ok := true
					for _, p := range parts {
						ok = ok && strings.Contains(string(m.payload), p)
					}
					if ok {
						return true
					}
				}
				return false
			}
			testkit.WaitFor(t, 20*time.Second, "oven readings", func() bool {
				return has("/oven01/process", `{"tag":"zone1_temp","value":2`, `"unit":"degC","quality":"good"`) &&
					has("/oven01/process", `"tag":"zone2_temp","value":2`) &&
					has("/oven01/process", `{"tag":"sensor4","value":null,"quality":"bad","error":"ns=1;s=Oven01.Sensor4: BadSensorFailure"`) &&
					has("/oven01/equipment", `"tag":"recipe","value":"PCB-4711","quality":"good"`) &&
					has("/oven01/time", `"tag":"cycle_time","value":5.8`, `"unit":"s"`)
			})
			if _, err := os.Stat(filepath.Join(dir, "pki", "own", "cert.pem")); err != nil {
				t.Errorf("client certificate not created beside the buffer: %v", err)
			}

			oven.Stop()
			testkit.WaitFor(t, 20*time.Second, "device_down event", func() bool {
				return has("/events", `"event":"device_down"`, `"device":"oven01"`)
			})
			if err := oven.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			testkit.WaitFor(t, 30*time.Second, "device_up event", func() bool {
				return has("/events", `"event":"device_up"`, `"device":"oven01"`)
			})
		})
	}
}
