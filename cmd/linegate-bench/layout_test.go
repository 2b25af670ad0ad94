package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestWriteConfigDefaults(t *testing.T) {
	devs := []device{{name: "press001", addr: "127.0.0.1:15020", unit: 1}}
	tags := []benchTag{{"h64", "process", "holding", "uint16", 64}}
	cases := []struct {
		name            string
		commit          time.Duration
		inflight        int
		contains, lacks []string
	}{
		{name: "the load run sets both", commit: 50 * time.Millisecond, inflight: 64,
			contains: []string{"commit_interval: 50ms}", "qos: 1, max_inflight: 64}"}},
		{name: "side by side leaves linegate's defaults",
			contains: []string{"max_size: 1GiB}\n", "qos: 1}\n"}, lacks: []string{"commit_interval", "max_inflight"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path, err := writeConfig(agentConfig{dir: dir, broker: "127.0.0.1:1", httpAddr: "127.0.0.1:2", interval: time.Second,
				commit: tc.commit, maxInflight: tc.inflight}, devs, tags)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got := string(b)
			for _, s := range tc.contains {
				if !strings.Contains(got, s) {
					t.Errorf("config lacks %q:\n%s", s, got)
				}
			}
			for _, s := range tc.lacks {
				if strings.Contains(got, s) {
					t.Errorf("config has %q:\n%s", s, got)
				}
			}
		})
	}
}
