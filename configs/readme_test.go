package configs

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEListsEveryKey keeps configs/README.md complete: every YAML key
// of Config, at any depth, is named there in backticks (alone or as the
// first or last part of a dotted path such as `tls.ca_file`).
func TestREADMEListsEveryKey(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{} // key → where it is declared, for the message
	yamlKeys(reflect.TypeFor[Config](), "", keys)
	if len(keys) < 50 {
		t.Fatalf("found only %d keys: the walk over Config is broken", len(keys))
	}
	for key, path := range keys {
		named := regexp.MustCompile("`(?:[a-z_]+\\.)*" + regexp.QuoteMeta(key) + "[`.]")
		if !named.Match(readme) {
			t.Errorf("configs/README.md does not name the key `%s` (%s)", key, path)
		}
	}
}

// yamlKeys adds the yaml keys of the struct type t (and of the structs it
// holds) to keys.
func yamlKeys(t reflect.Type, at string, keys map[string]string) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" { // an embedded or untagged struct: its keys are inline
			yamlKeys(f.Type, at, keys)
			continue
		}
		keys[tag] = at + tag
		yamlKeys(f.Type, at+tag+".", keys)
	}
}
