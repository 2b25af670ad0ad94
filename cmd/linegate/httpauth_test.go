package main

import (
	"strings"
	"testing"
)

// TestRunRefusesOpenHTTPWithoutToken: run exits 2 before touching anything
// when http.listen is reachable from other machines without a token.
func TestRunRefusesOpenHTTPWithoutToken(t *testing.T) {
	cfg := writeFile(t, "open.yaml", `gateway: {id: g, site: s, area: a, line: l}
buffer: {path: `+t.TempDir()+`/b.db}
uplink: {brokers: [tcp://127.0.0.1:1]}
http: {listen: 0.0.0.0:9870}
devices:
  - {name: d, driver: modbus, address: tcp://127.0.0.1:502, tags: [{name: t, class: process, register: holding, address: 0, type: int16}]}
`)
	code, _, errOut := run(t, "run", "-c", cfg)
	if code != exitUsage || !strings.Contains(errOut, `open.yaml:4: http: listen "0.0.0.0:9870" is not a loopback address: set token or token_file`) {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
