package peers

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SparkplugDecode decodes Sparkplug B payloads with the npm package
// sparkplug-payload (sparkplug_decode.js), an implementation independent of
// linegate's, and returns one object per payload as that package sees it
// (numbers as json.Number; 64-bit integers as decimal strings). A payload
// it cannot decode gives {"error": "..."}. It fails the test when node or
// the package is missing.
func SparkplugDecode(t testing.TB, payloads [][]byte) []map[string]any {
	t.Helper()
	in := make([]string, len(payloads))
	for i, p := range payloads {
		in[i] = base64.StdEncoding.EncodeToString(p)
	}
	var res []map[string]any
	for _, line := range sparkplugScript(t, "sparkplug_decode.js", in) {
		d := json.NewDecoder(bytes.NewReader(line))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatalf("sparkplug_decode.js printed %q: %v", line, err)
		}
		res = append(res, m)
	}
	return res
}

// SparkplugEncode encodes Sparkplug B payloads, each given as the JSON
// object sparkplug-payload's encodePayload takes
// ({"timestamp":..., "metrics":[{"name":"setpoint","type":"Float","value":52.5}]}),
// with that package (sparkplug_encode.js). It fails the test when node or
// the package is missing.
func SparkplugEncode(t testing.TB, payloads []string) [][]byte {
	t.Helper()
	var res [][]byte
	for _, line := range sparkplugScript(t, "sparkplug_encode.js", payloads) {
		b, err := base64.StdEncoding.DecodeString(string(line))
		if err != nil {
			t.Fatalf("sparkplug_encode.js printed %q: %v", line, err)
		}
		res = append(res, b)
	}
	return res
}

// sparkplugScript feeds one line per input to a node script that uses
// sparkplug-payload and returns its output lines, one per input.
func sparkplugScript(t testing.TB, script string, lines []string) [][]byte {
	t.Helper()
	need(t, NodePath, "nodejs")
	dir := Dir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "sparkplug-payload", "package.json")); err != nil {
		t.Fatalf("sparkplug-payload is not installed: run npm ci in %s (.ci/run does): %v", dir, err)
	}
	var in bytes.Buffer
	for _, l := range lines {
		in.WriteString(l)
		in.WriteByte('\n')
	}
	cmd := exec.Command(NodePath, filepath.Join(dir, script))
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	var res [][]byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		res = append(res, append([]byte(nil), sc.Bytes()...))
	}
	if len(res) != len(lines) {
		t.Fatalf("%s answered %d of %d payloads\n%s", script, len(res), len(lines), stderr.String())
	}
	return res
}
