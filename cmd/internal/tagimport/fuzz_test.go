package tagimport

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/linegate/linegate/configs"
)

// FuzzParse: any file either fails with an error or gives a device block
// that the config loader accepts; nothing panics.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"kepware.csv", "generic.csv", "tia.csv", "studio5000.csv"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, "")
	}
	f.Add([]byte("name,node\nx,\"ns=2;s=a\"\n"), Generic)
	f.Fuzz(func(t *testing.T, data []byte, format string) {
		res, err := Parse(bytes.NewReader(data), format, Options{})
		if err != nil {
			return
		}
		out := res.YAML(Device{Name: "d1", Address: "tcp://127.0.0.1:502", UnitID: 1, Endpoint: "opc.tcp://127.0.0.1:4840"})
		if len(res.Tags) == 0 {
			var v any
			if err := yaml.Unmarshal(append([]byte("devices:\n"), out...), &v); err != nil {
				t.Fatalf("block is not YAML: %v\n%s", err, out)
			}
			return
		}
		cfg := append([]byte(configHead), out...)
		if _, err := configs.Parse("x.yaml", cfg, func(string) (string, bool) { return "", false }); err != nil {
			t.Fatalf("check refuses the block: %v\n%s", err, out)
		}
	})
}

const configHead = "gateway: {id: g1, site: s, area: a, line: l}\nbuffer: {path: /tmp/x.db}\nuplink: {brokers: [tcp://127.0.0.1:1884]}\ndevices:\n"
