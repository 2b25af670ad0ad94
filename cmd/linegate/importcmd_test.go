package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linegate/linegate/configs"
)

func TestInitAndExample(t *testing.T) {
	shipped, err := os.ReadFile("../../configs/linegate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := runCLI(t, []string{"example"}, exitOK, nil, nil)
	if out != string(shipped) {
		t.Error("example does not print configs/linegate.yaml")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "linegate.yaml")
	runCLI(t, []string{"init", "-c", path}, exitOK, []string{"wrote " + path}, nil)
	runCLI(t, []string{"init", "-c", path}, exitUsage, nil, []string{"exists: not overwritten (add --force"})
	runCLI(t, []string{"init", "-c", path, "--force", "--gateway", "gw7", "--broker", "tcp://127.0.0.1:1884", "--buffer", "b.db"}, exitOK, nil, nil)
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Gateway.ID != "gw7" || cfg.Uplink.Brokers[0] != "tcp://127.0.0.1:1884" || cfg.Buffer.Path != filepath.Join(dir, "b.db") || len(cfg.Devices) != 2 {
		t.Errorf("init flags not applied: %s %v %s, %d devices", cfg.Gateway.ID, cfg.Uplink.Brokers, cfg.Buffer.Path, len(cfg.Devices))
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (it will hold credentials)", fi.Mode().Perm())
	}
}

func TestImport(t *testing.T) {
	kepware, _ := filepath.Abs("../internal/tagimport/testdata/kepware.csv")
	tia, _ := filepath.Abs("../internal/tagimport/testdata/tia.csv")
	out, errOut := runCLI(t, []string{"import", kepware, "--name", "press01", "--address", "tcp://127.0.0.1:502"}, exitOK,
		[]string{"devices:\n", "  - name: press01\n", "{name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}"},
		[]string{`kepware.csv:8: not imported: data type "String"`, `kepware.csv:9: not imported: data type "BCD"`, "6 tag(s) imported, 2 row(s) not imported"})
	_ = errOut
	// what import prints, check accepts
	cfgText := "gateway: {id: g, site: s, area: a, line: l}\nbuffer: {path: " + filepath.Join(t.TempDir(), "b.db") + "}\nuplink: {brokers: [tcp://127.0.0.1:1884]}\n" + out
	runCLI(t, []string{"check", "-c", writeFile(t, "printed.yaml", cfgText)}, exitOK, []string{"6 tag(s)"}, nil)

	runCLI(t, []string{"import", tia, "--name", "oven02"}, exitUsage, nil, []string{"OPC UA tag list: --endpoint opc.tcp://host:port is required"})
	runCLI(t, []string{"import", kepware, "--address", "tcp://127.0.0.1:502"}, exitUsage, nil, []string{"--name DEVICE is required"})
	runCLI(t, []string{"import", kepware, "--name", "p", "--address", "tcp://127.0.0.1:502", "--format", "excel"}, exitUsage, nil, []string{`--format "excel"`})
	empty := writeFile(t, "empty.csv", "name,address\n,40001\n")
	runCLI(t, []string{"import", empty, "--name", "p", "--address", "tcp://127.0.0.1:502"}, exitFailed, nil, []string{"empty.csv:2: not imported: no tag name", "no row could be imported"})

	// -c: added at the end, or refused without touching the file
	notLast := writeFile(t, "notlast.yaml", "devices:\n  - {name: d, driver: modbus, address: tcp://127.0.0.1:502, tags: [{name: t, class: process, register: holding, address: 0, type: int16}]}\ngateway: {id: g, site: s, area: a, line: l}\nuplink: {brokers: [tcp://127.0.0.1:1884]}\n")
	before, _ := os.ReadFile(notLast)
	runCLI(t, []string{"import", kepware, "--name", "press01", "--address", "tcp://127.0.0.1:502", "-c", notLast}, exitUsage, nil, []string{"its last section is not devices:"})
	dup := writeFile(t, "dup.yaml", "gateway: {id: g, site: s, area: a, line: l}\nbuffer: {path: /tmp/x.db}\nuplink: {brokers: [tcp://127.0.0.1:1884]}\ndevices:\n  - {name: press01, driver: modbus, address: tcp://127.0.0.1:502, tags: [{name: t, class: process, register: holding, address: 0, type: int16}]}\n")
	runCLI(t, []string{"import", kepware, "--name", "press01", "--address", "tcp://127.0.0.1:502", "-c", dup}, exitUsage, nil, []string{"would not be valid (not written)", "duplicate device name"})
	if after, _ := os.ReadFile(notLast); string(after) != string(before) {
		t.Error("a refused import changed the config")
	}
	if strings.Contains(errOut, "panic") {
		t.Fatal(errOut)
	}
}
