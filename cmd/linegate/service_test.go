package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/internal/testkit"
)

// TestServiceUnit checks the systemd unit against the golden file and, where
// systemd-analyze exists, has systemd parse it: an unknown or misspelled
// directive is only a warning to systemd, so any warning fails the test.
// Nothing is installed.
func TestServiceUnit(t *testing.T) {
	spec := serviceSpec{ConfigPath: "/etc/linegate/linegate.yaml", ReadWrite: []string{"/data/linegate"}}
	var got bytes.Buffer
	if err := renderUnit(&got, spec, "/usr/local/bin/linegate"); err != nil {
		t.Fatal(err)
	}
	testkit.Golden(t, filepath.Join("testdata", "linegate.service"), got.Bytes())
	for _, must := range []string{
		"After=network-online.target time-sync.target",
		"User=linegate", "StateDirectory=linegate", "NoNewPrivileges=yes", "ProtectSystem=strict",
		"ProtectHome=yes", "PrivateTmp=yes", `ReadWritePaths="-/data/linegate"`, "Restart=always",
		"ExecReload=/bin/kill -HUP $MAINPID", `ExecStart=/usr/local/bin/linegate "run" "-c" "/etc/linegate/linegate.yaml"`,
	} {
		if !strings.Contains(got.String(), must+"\n") {
			t.Errorf("unit lacks %q", must)
		}
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit checked against the golden file only")
		return
	}
	// verify wants ExecStart's binary to exist: use this test's own.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "linegate.service")
	var buf bytes.Buffer
	if err := renderUnit(&buf, serviceSpec{ConfigPath: "/etc/linegate/linegate.yaml", ReadWrite: []string{"/data with space/lg"}}, exe); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unit, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || strings.Contains(string(out), unit) {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestServiceConfig checks what each OS's service is installed with.
func TestServiceConfig(t *testing.T) {
	spec := serviceSpec{ConfigPath: configs.PathsFor("windows", "").Config}
	tests := []struct {
		goos     string
		wantArgs []string
		wantUser string
		options  map[string]any
	}{
		{"linux", []string{"run", "-c", spec.ConfigPath}, "linegate", map[string]any{"SystemdScript": systemdUnit}},
		{"windows", []string{"service", "run", "-c", spec.ConfigPath}, "", map[string]any{
			"StartType": "automatic", "OnFailure": "restart", "DelayedAutoStart": true, "OnFailureDelayDuration": "5s"}},
	}
	for _, tc := range tests {
		t.Run(tc.goos, func(t *testing.T) {
			c := serviceConfig(spec, tc.goos)
			if c.Name != "linegate" || strings.Join(c.Arguments, " ") != strings.Join(tc.wantArgs, " ") || c.UserName != tc.wantUser {
				t.Fatalf("config %+v", c)
			}
			for k, v := range tc.options {
				if c.Option[k] != v {
					t.Errorf("option %s = %v, want %v", k, c.Option[k], v)
				}
			}
		})
	}
}

// TestServiceSpecReadWrite checks that a buffer or log outside the state
// folder is made writable in the unit, and nothing else.
func TestServiceSpecReadWrite(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, extra string
		want        []string
	}{
		{"state folder", "buffer: {path: /var/lib/linegate/buffer.db}\n", nil},
		{"buffer elsewhere", "buffer: {path: " + dir + "/buf/b.db}\n", []string{dir + "/buf"}},
		{"log elsewhere", "buffer: {path: /var/lib/linegate/b.db}\nlog: {file: " + dir + "/logs/l.log}\n", []string{dir + "/logs"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "c"+string(rune('0'+i))+".yaml")
			text := "gateway: {id: gw1, site: s, area: a, line: l}\n" + tc.extra +
				"uplink: {brokers: [tcp://127.0.0.1:1884]}\ndevices:\n  - {name: p, driver: modbus, address: tcp://127.0.0.1:502, tags: [{name: t, class: process, register: holding, address: 0, type: int16}]}\n"
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			spec, notes := serviceSpecFor(path)
			if len(notes) > 0 {
				t.Fatalf("notes: %v", notes)
			}
			if strings.Join(spec.ReadWrite, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("ReadWrite %v, want %v", spec.ReadWrite, tc.want)
			}
		})
	}
}
