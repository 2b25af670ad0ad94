package peers

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// OPCUAValue is what opcua_read.js read of one node.
type OPCUAValue struct {
	Node   string `json:"node"`
	Status string `json:"status"` // "Good", "BadNodeIdUnknown", ...
	Value  any    `json:"value"`
	Type   string `json:"type"` // "Double", "String", ...
}

// OPCUARead reads nodes from endpoint (security None, anonymous) with
// node-opcua's client (testdata/peers/opcua_read.js): an independent
// reader of an OPC UA server. It fails the test when node or node-opcua
// is missing or the client cannot connect.
func OPCUARead(t testing.TB, endpoint string, nodes ...string) map[string]OPCUAValue {
	t.Helper()
	need(t, NodePath, "nodejs")
	dir := Dir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "node-opcua", "package.json")); err != nil {
		t.Fatalf("node-opcua is not installed: run npm ci in %s (.ci/run does): %v", dir, err)
	}
	cmd := exec.Command(NodePath, append([]string{filepath.Join(dir, "opcua_read.js"), endpoint}, nodes...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("opcua_read.js: %v\n%s", err, stderr.String())
	}
	res := map[string]OPCUAValue{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "VALUE ")
		if !ok {
			continue // node-opcua's own warnings
		}
		var v OPCUAValue
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("opcua_read.js printed %q: %v", sc.Text(), err)
		}
		res[v.Node] = v
	}
	if len(res) != len(nodes) {
		t.Fatalf("opcua_read.js read %d of %d nodes\n%s", len(res), len(nodes), stderr.String())
	}
	return res
}
