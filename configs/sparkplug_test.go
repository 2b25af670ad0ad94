package configs

import (
	"strings"
	"testing"
)

func TestSparkplugConfig(t *testing.T) {
	tests := []struct {
		name            string
		gateway, uplink string
		group, node     string // wanted, when no error
		host            string
		qos             byte
		err             string
	}{
		{name: "json default", uplink: `{brokers: [tcp://127.0.0.1:1884]}`, qos: 1},
		{name: "defaults", uplink: `{brokers: [tcp://127.0.0.1:1884], format: sparkplugb}`, group: "s_l", node: "gw1"},
		{name: "lossless", uplink: `{brokers: [tcp://127.0.0.1:1884], format: sparkplugb, qos: 1}`, group: "s_l", node: "gw1", qos: 1},
		{name: "primary host", uplink: `{brokers: [tcp://127.0.0.1:1884], format: sparkplugb, primary_host: ignition-01}`,
			group: "s_l", node: "gw1", host: "ignition-01"},
		{name: "bad primary host", uplink: `{brokers: [tcp://127.0.0.1:1884], format: sparkplugb, primary_host: "a+b"}`,
			err: `linegate.yaml:3: uplink: primary_host "a+b" must not hold / + # or NUL`},
		{name: "primary host with json", uplink: `{brokers: [tcp://127.0.0.1:1884], primary_host: h}`,
			err: `primary_host applies only to format: sparkplugb`},
		{name: "explicit", uplink: `{brokers: [tcp://127.0.0.1:1884], format: sparkplugb, group_id: Plant A, edge_node: L1}`,
			group: "Plant A", node: "L1"},
		{name: "site and line", gateway: `{id: line1-pc, site: plant-a, area: asm, line: line1}`,
			uplink: `{brokers: [tcp://127.0.0.1:1884], format: sparkplugb}`, group: "plant-a_line1", node: "line1-pc"},
		{name: "bad group", uplink: `{brokers: [tcp://127.0.0.1:1884], format: sparkplugb, group_id: "a/b"}`,
			err: `linegate.yaml:3: uplink: group_id "a/b" must not hold / + # or NUL`},
		{name: "bad edge node", uplink: `{brokers: [tcp://127.0.0.1:1884], format: sparkplugb, edge_node: "n#"}`,
			err: `linegate.yaml:3: uplink: edge_node "n#" must not hold / + # or NUL`},
		{name: "group with json", uplink: `{brokers: [tcp://127.0.0.1:1884], group_id: g}`,
			err: `linegate.yaml:3: uplink: group_id applies only to format: sparkplugb`},
		{name: "edge node with json", uplink: `{brokers: [tcp://127.0.0.1:1884], format: json, edge_node: n}`,
			err: `edge_node applies only to format: sparkplugb`},
		{name: "unknown format", uplink: `{brokers: [tcp://127.0.0.1:1884], format: sparkplug}`,
			err: `format "sparkplug" is not supported (json, sparkplugb)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := base
			if tt.gateway != "" {
				src = strings.Replace(src, "{id: gw1, site: s, area: a, line: l}", tt.gateway, 1)
			}
			src = strings.Replace(src, "{brokers: [tcp://127.0.0.1:1884]}", tt.uplink, 1)
			cfg, err := Parse("linegate.yaml", []byte(src), env(nil))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Uplink.GroupID != tt.group || cfg.Uplink.EdgeNode != tt.node {
				t.Errorf("group_id, edge_node = %q, %q; want %q, %q", cfg.Uplink.GroupID, cfg.Uplink.EdgeNode, tt.group, tt.node)
			}
			if cfg.Uplink.PrimaryHost != tt.host || cfg.Uplink.QoSLevel() != tt.qos {
				t.Errorf("primary_host, qos = %q, %d; want %q, %d", cfg.Uplink.PrimaryHost, cfg.Uplink.QoSLevel(), tt.host, tt.qos)
			}
		})
	}
}
