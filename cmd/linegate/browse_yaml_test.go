package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// browse --yaml prints a device block check accepts, with the variables
// the filter lets through.
func TestOPCUABrowseYAML(t *testing.T) {
	o := startTestOven(t, false)
	ep := o.Endpoint()
	pki := t.TempDir()
	out, _ := runCLI(t, []string{"opcua", "browse", ep, "Objects/Oven01", "--depth", "3", "--yaml", "--filter", "*Temperature*", "--pki-dir", pki}, exitOK,
		[]string{"devices:\n", "  - name: oven01\n", "    driver: opcua\n", "    endpoint: " + ep, `{name: zone1_temperature, class: process, node: "ns=1;s=Oven01.Zone1.Temperature"}   # Zone1/Temperature`}, nil)
	if strings.Contains(out, "Setpoint") || strings.Contains(out, "Recipe") {
		t.Errorf("the filter let other variables through:\n%s", out)
	}
	cfg := "gateway: {id: g, site: s, area: a, line: l}\nbuffer: {path: " + filepath.Join(t.TempDir(), "b.db") + "}\nuplink: {brokers: [tcp://127.0.0.1:1884]}\n" + out
	runCLI(t, []string{"check", "-c", writeFile(t, "browsed.yaml", cfg)}, exitOK, []string{"device oven01: opcua " + ep}, nil)

	runCLI(t, []string{"opcua", "browse", ep, "Objects/Oven01", "--yaml", "--filter", "Nothing*", "--pki-dir", pki}, exitFailed, nil, []string{"no variable below Oven01 matched"})
	runCLI(t, []string{"opcua", "browse", ep, "--yaml", "--filter", "[", "--pki-dir", pki}, exitUsage, nil, []string{`--filter "["`})
}
