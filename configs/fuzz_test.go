package configs

import (
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary text to the loader: it must never panic, it
// returns either a config or an error, never both or neither, and parsing
// in parts (split.go) gives what parsing whole gives. A valid
// config must hold what validation promises the rest of the agent.
//
// The seed corpus is testdata/fuzz/FuzzParse (the examples' shapes, YAML
// anchors, ${ENV} references, odd scalars); the embedded examples are
// added here so that the corpus follows them.
func FuzzParse(f *testing.F) {
	for _, name := range ExampleNames() {
		if data, err := Example(name); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(base))
	env := func(name string) (string, bool) {
		switch name {
		case "SET":
			return "tcp://127.0.0.1:1884", true
		case "EMPTY":
			return "", true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A file parsed in parts must come out as parsed whole.
		parseBothWays(t, data, env)
		cfg, err := Parse("/fuzz/linegate.yaml", data, env)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", cfg != nil, err)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if len(cfg.Devices) == 0 || len(cfg.Uplink.Brokers) == 0 {
			t.Fatalf("valid config without devices or brokers: %+v", cfg)
		}
		if cfg.Buffer.MaxSize < MinMaxSize || cfg.Uplink.MaxInflight < 1 {
			t.Fatalf("defaults not applied: %+v", cfg.Buffer)
		}
		if l := cfg.HTTP.ListenAddr(); l != "" && !IsLoopback(l) && cfg.HTTP.Token == "" {
			t.Fatalf("http.listen %q without a token passed validation", l)
		}
		for _, d := range cfg.Devices {
			if d.Name == "" || strings.ContainsAny(d.Name, "/+#") || len(d.Tags) == 0 {
				t.Fatalf("device %q passed validation", d.Name)
			}
		}
	})
}
