package configs

import (
	"embed"
	"io/fs"
)

// examples holds the annotated example files, so that `linegate demo` and
// `linegate config example` work from the single binary.
//
//go:embed linegate.yaml demo.yaml
var examples embed.FS

// Example returns the embedded example file name ("linegate.yaml", "demo.yaml").
func Example(name string) ([]byte, error) { return examples.ReadFile(name) }

// ExampleNames lists the embedded examples.
func ExampleNames() []string {
	ents, _ := fs.ReadDir(examples, ".")
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
