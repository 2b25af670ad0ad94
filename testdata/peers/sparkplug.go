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
	need(t, NodePath, "nodejs")
	dir := Dir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "sparkplug-payload", "package.json")); err != nil {
		t.Fatalf("sparkplug-payload is not installed: run npm ci in %s (.ci/run does): %v", dir, err)
	}
	var in bytes.Buffer
	for _, p := range payloads {
		in.WriteString(base64.StdEncoding.EncodeToString(p))
		in.WriteByte('\n')
	}
	cmd := exec.Command(NodePath, filepath.Join(dir, "sparkplug_decode.js"))
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sparkplug_decode.js: %v\n%s", err, stderr.String())
	}
	var res []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		d := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatalf("sparkplug_decode.js printed %q: %v", sc.Text(), err)
		}
		res = append(res, m)
	}
	if len(res) != len(payloads) {
		t.Fatalf("sparkplug_decode.js decoded %d payloads of %d\n%s", len(res), len(payloads), stderr.String())
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
	need(t, NodePath, "nodejs")
	dir := Dir(t)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "sparkplug-payload", "package.json")); err != nil {
		t.Fatalf("sparkplug-payload is not installed: run npm ci in %s (.ci/run does): %v", dir, err)
	}
	var in bytes.Buffer
	for _, p := range payloads {
		in.WriteString(p)
		in.WriteByte('\n')
	}
	cmd := exec.Command(NodePath, filepath.Join(dir, "sparkplug_encode.js"))
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sparkplug_encode.js: %v\n%s", err, stderr.String())
	}
	var res [][]byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		b, err := base64.StdEncoding.DecodeString(sc.Text())
		if err != nil {
			t.Fatalf("sparkplug_encode.js printed %q: %v", sc.Text(), err)
		}
		res = append(res, b)
	}
	if len(res) != len(payloads) {
		t.Fatalf("sparkplug_encode.js encoded %d payloads of %d\n%s", len(res), len(payloads), stderr.String())
	}
	return res
}
