package configs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a config, at a line of the file.
type Problem struct {
	Line int
	Msg  string // already names device and tag
}

// Error lists every problem found in one config file, one per line,
// as "linegate.yaml:23: device press01, tag temp: unknown type "float"".
type Error struct {
	File     string
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.File)
		if p.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
		b.WriteString(p.Msg)
	}
	return b.String()
}

// LookupEnv is how ${NAME} is resolved; os.LookupEnv in production.
type LookupEnv func(name string) (string, bool)

// Load reads, expands, decodes and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse decodes and validates config text. name is used in messages and to
// resolve relative file paths (password_file, ...) against its folder.
//
// A YAML tree costs ~2 kB per tag (20 MB for 10,000 tags), so a file is
// parsed in parts where it can be: the sections, then one device at a time
// (split.go), each device's tree released once it is decoded and checked.
// Where the text cannot be split safely (flow-style devices, anchors used
// across devices, several documents) the whole file is parsed at once; both
// ways give the same config and the same errors.
func Parse(name string, data []byte, env LookupEnv) (*Config, error) {
	marked := markEnvRefs(data)
	if parts, ok := splitDevices(marked); ok {
		if cfg, err, ok := parseParts(name, parts, env); ok {
			return cfg, err
		}
	}
	return parseWhole(name, marked, env)
}

// parseWhole parses the file as one YAML tree.
func parseWhole(name string, marked []byte, env LookupEnv) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(marked, &doc); err != nil {
		return nil, syntaxError(shortName(name), marked, err)
	}
	root, err := topMapping(name, &doc)
	if err != nil {
		return nil, err
	}
	// The device items leave the tree and come back one at a time, as
	// from a split file.
	var items []*yaml.Node
	devs := valueOf(root, "devices")
	if devs != nil && devs.Kind == yaml.SequenceNode {
		items, devs.Content = devs.Content, nil
	} else {
		devs = nil // an alias or no list: decoded with the sections
	}
	cfg, err := decodeConfig(name, root, devs, len(items), func(i int) (*yaml.Node, error) {
		item := items[i]
		items[i] = nil
		return item, nil
	}, env)
	return cfg, err
}

// parseParts parses a split file: ok is false when a part does not parse
// on its own (an alias to an anchor in another part, a construct that spans
// parts), and the caller parses the whole file instead.
func parseParts(name string, parts *deviceParts, env LookupEnv) (_ *Config, _ error, ok bool) {
	var doc yaml.Node
	if err := yaml.Unmarshal(parts.head, &doc); err != nil {
		return nil, nil, false
	}
	root, err := topMapping(name, &doc)
	if err != nil {
		return nil, nil, false
	}
	devs, ok := parts.attach(root)
	if !ok {
		return nil, nil, false
	}
	// An alias after the devices takes, in the whole file, the last anchor
	// of its name before it: one a device redefines is not the head's.
	late := map[string]bool{}
	aliasesAfter(root, parts.items[0][0]+1, late)
	errSplit := errors.New("part does not parse alone")
	cfg, err := decodeConfig(name, root, devs, len(parts.items), func(i int) (*yaml.Node, error) {
		item, ok := parts.item(i)
		if !ok || len(late) > 0 && anchorIn(item, late) {
			return nil, errSplit
		}
		return item, nil
	}, env)
	if errors.Is(err, errSplit) {
		return nil, nil, false
	}
	return cfg, err, true
}

func shortName(name string) string {
	if name == "" {
		return "config"
	}
	return filepath.Base(name)
}

func topMapping(name string, doc *yaml.Node) (*yaml.Node, error) {
	fail := func(line int, msg string) error {
		return &Error{File: shortName(name), Problems: []Problem{{Line: line, Msg: msg}}}
	}
	if len(doc.Content) == 0 {
		return nil, fail(0, "the file is empty")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, "the top level must be a mapping (gateway:, buffer:, uplink:, devices:)")
	}
	return root, nil
}

// decodeConfig decodes and checks root (the sections, with devs, the
// devices list, empty) and then n device items, taken one at a time from
// item and put into devs. A device's tag nodes are released once it is
// decoded and checked, so that the tree of the whole file is never held
// together with the decoded config. An error from item is returned as is.
//
// What is reported is the same as for a file decoded at once: unknown keys
// and environment problems first (all of them, by line), else decoding
// errors, else validation problems.
func decodeConfig(name string, root, devs *yaml.Node, n int, item func(int) (*yaml.Node, error), env LookupEnv) (*Config, error) {
	short := shortName(name)
	var keyProblems []Problem
	schema := schemaCache{}
	expandEnv(root, env, &keyProblems)
	checkKeys(root, reflect.TypeOf(Config{}), "", schema, &keyProblems)

	cfg := &Config{File: name}
	var typeErrs decodeErrors
	fatal := typeErrs.add(root, root.Decode(cfg)) // a decoding error that is not a type error
	if devs != nil {
		cfg.Devices = make([]Device, n)
		devs.Content = make([]*yaml.Node, n)
	}
	nodes := indexNodes(root)
	v := &validator{cfg: cfg, nodes: nodes, dir: filepath.Dir(name)}
	// Unknown keys and bad values do not stop the checks: every problem of
	// the file is reported at once. A value that could not be decoded (or
	// expanded) is left zero, and what the checks then say about its line
	// is left out.
	checking := func() bool { return fatal == nil }
	if checking() {
		v.top()
	}
	templates := templatesOf(root, &keyProblems)
	seen := map[string]int{}
	for i := range cfg.Devices {
		if devs != nil {
			dn, err := item(i)
			if err != nil {
				return nil, err
			}
			devs.Content[i] = dn
			expandEnv(dn, env, &keyProblems)
			templates.expand(dn, &keyProblems)
			checkKeys(dn, reflect.TypeOf(Device{}), "", schema, &keyProblems)
			if fatal == nil {
				fatal = typeErrs.add(dn, dn.Decode(&cfg.Devices[i]))
			}
		}
		if checking() {
			cfg.Devices[i].Line = nodes.device(i).Line
			for j := range cfg.Devices[i].Tags {
				cfg.Devices[i].Tags[j].Line = nodes.tag(i, j).Line
			}
			v.deviceAt(i, seen)
		}
		if devs != nil {
			dropTagNodes(devs.Content[i])
		}
	}
	if fatal != nil {
		return nil, yamlError(short, fatal)
	}
	v.crossDevice()
	if problems := allProblems(keyProblems, typeErrs, v.problems); len(problems) > 0 {
		return nil, &Error{File: short, Problems: problems}
	}
	cfg.Warnings = warningLines(short, v.warnings)
	return cfg, nil
}

func sortProblems(p []Problem) {
	sort.SliceStable(p, func(a, b int) bool { return p[a].Line < p[b].Line })
}

// decodeErrors collects the YAML decoder's type errors (a string where a
// number belongs, ...) across the separately decoded parts of a file.
type decodeErrors []Problem

// add keeps err's type errors, named by where they are in n, and returns
// any other error.
func (d *decodeErrors) add(n *yaml.Node, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		*d = append(*d, typeProblems(n, te.Errors)...)
		return nil
	}
	return err
}

// allProblems merges the unknown keys and environment problems, the bad
// values and the checks' findings, by line. A check's finding on a line
// that already has a problem is dropped: it is about the value left zero.
func allProblems(keys, values, checks []Problem) []Problem {
	bad := map[int]bool{}
	out := make([]Problem, 0, len(keys)+len(values)+len(checks))
	// A template's bad key or value is copied into each device using it:
	// reported once, named by whoever comes first (the template).
	once := map[string]bool{}
	for _, p := range append(keys, values...) {
		if _, tail, ok := strings.Cut(p.Msg, ": "); ok && p.Line > 0 {
			k := strconv.Itoa(p.Line) + "\x00" + tail
			if once[k] {
				continue
			}
			once[k] = true
		}
		bad[p.Line] = true
		out = append(out, p)
	}
	for _, p := range checks {
		if p.Line > 0 && bad[p.Line] {
			continue
		}
		if _, tail, ok := strings.Cut(p.Msg, ": "); ok && p.Line > 0 {
			k := strconv.Itoa(p.Line) + "\x00" + tail
			if once[k] {
				continue
			}
			once[k] = true
		}
		out = append(out, p)
	}
	sortProblems(out)
	return out
}

// dropTagNodes lets the garbage collector take a decoded device's tag
// nodes. Only the tags go (the checks after the device loop look at device
// keys), and not when an anchor inside them may be aliased by a later
// device.
func dropTagNodes(dev *yaml.Node) {
	if tags := valueOf(dev, "tags"); tags != nil && tags.Kind == yaml.SequenceNode && !hasAnchor(tags) {
		tags.Content = nil
	}
}

// aliasesAfter adds to names the anchors that aliases below line refer to.
func aliasesAfter(n *yaml.Node, line int, names map[string]bool) {
	if n.Kind == yaml.AliasNode && n.Line > line {
		names[n.Value] = true
	}
	for _, c := range n.Content {
		aliasesAfter(c, line, names)
	}
}

// anchorIn says whether n defines one of the anchors in names.
func anchorIn(n *yaml.Node, names map[string]bool) bool {
	if names[n.Anchor] {
		return true
	}
	for _, c := range n.Content {
		if anchorIn(c, names) {
			return true
		}
	}
	return false
}

func hasAnchor(n *yaml.Node) bool {
	if n.Anchor != "" {
		return true
	}
	for _, c := range n.Content {
		if hasAnchor(c) {
			return true
		}
	}
	return false
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns the YAML library's "yaml: line 5: ..." into "file:5: ...".
func yamlError(file string, err error) error {
	var lines []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		lines = te.Errors
	} else {
		lines = []string{err.Error()}
	}
	e := &Error{File: file}
	for _, l := range lines {
		l = strings.TrimSpace(l)
		if m := yamlLine.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			e.Problems = append(e.Problems, Problem{Line: n, Msg: m[2]})
			continue
		}
		e.Problems = append(e.Problems, Problem{Msg: strings.TrimPrefix(l, "yaml: ")})
	}
	return e
}

var (
	envRefText = regexp.MustCompile(`\$\$|\$\{([^}\n]*)\}`)
	envRef     = regexp.MustCompile(`\$\$|⟦([^⟧]*)⟧`)
)

// markEnvRefs rewrites ${NAME} as ⟦NAME⟧ before parsing, because "{" and "}"
// end a plain value inside a flow collection ([tcp://${HOST}:1883] would not
// parse). The brackets are plain-scalar safe and keep every line where it was.
func markEnvRefs(data []byte) []byte {
	return envRefText.ReplaceAllFunc(data, func(ref []byte) []byte {
		if string(ref) == "$$" {
			return ref
		}
		return []byte("⟦" + string(ref[2:len(ref)-1]) + "⟧")
	})
}

// expandEnv replaces ${NAME} in every scalar value, after parsing, so that a
// value containing YAML syntax ("a #b", ": ") stays one value and lines stay
// true. "$$" is a literal "$". An unset variable is an error: an empty
// password or address is worse than a refusal to start.
func expandEnv(n *yaml.Node, env LookupEnv, problems *[]Problem) {
	if n.Kind == yaml.ScalarNode && strings.ContainsAny(n.Value, "$⟦") {
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			if ref == "$$" {
				return "$"
			}
			name := strings.TrimSuffix(strings.TrimPrefix(ref, "⟦"), "⟧")
			if !validEnvName(name) {
				*problems = append(*problems, Problem{n.Line, fmt.Sprintf("${%s} is not a valid environment variable reference", name)})
				return ref
			}
			val, ok := env(name)
			if !ok {
				*problems = append(*problems, Problem{n.Line, fmt.Sprintf("environment variable %s is not set", name)})
			}
			return val
		})
	}
	for _, c := range n.Content {
		expandEnv(c, env, problems)
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9' {
			continue
		}
		return false
	}
	return true
}

// checkKeys reports every mapping key that the schema does not know, with a
// suggestion, because a misspelt key silently falling back to a default is
// the worst kind of config error on a line PC.
func checkKeys(n *yaml.Node, t reflect.Type, where string, schema schemaCache, problems *[]Problem) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := schema.fields(t)
		switch t {
		case reflect.TypeOf(Device{}):
			if where == "templates" {
				where = "template " + scalarOf(n, "name", "#?")
			} else {
				where = "device " + scalarOf(n, "name", "#?")
			}
		case reflect.TypeOf(Tag{}):
			where += ", tag " + scalarOf(n, "name", "#?")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown key %q", k.Value)
				if s := suggest(k.Value, fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				*problems = append(*problems, Problem{k.Line, prefix(where) + msg})
				continue
			}
			if t == reflect.TypeOf(Config{}) && k.Value == "templates" {
				checkKeys(v, f, "templates", schema, problems) // named as templates, not devices
				continue
			}
			checkKeys(v, f, where, schema, problems)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for _, c := range n.Content {
			checkKeys(c, t.Elem(), where, schema, problems)
		}
	}
}

func prefix(where string) string {
	if where == "" {
		return ""
	}
	return where + ": "
}

// schemaCache holds yamlFields of each struct type met: a 10,000-tag file
// would otherwise build the Tag field map 10,000 times.
type schemaCache map[reflect.Type]map[string]reflect.Type

func (c schemaCache) fields(t reflect.Type) map[string]reflect.Type {
	f, ok := c[t]
	if !ok {
		f = yamlFields(t)
		c[t] = f
	}
	return f
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		m[name] = f.Type
	}
	return m
}

// suggest returns the known key closest to k, if it is close.
func suggest(k string, known map[string]reflect.Type) string {
	best, bestD := "", 3
	for name := range known {
		if d := editDistance(k, name); d < bestD || d == bestD && name < best {
			best, bestD = name, d
		}
	}
	if bestD > 2 {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func scalarOf(m *yaml.Node, key, def string) string {
	if v := valueOf(m, key); v != nil && v.Kind == yaml.ScalarNode && v.Value != "" {
		return v.Value
	}
	return def
}

func valueOf(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// nodeIndex finds the YAML node of each device and tag, for line numbers.
type nodeIndex struct{ root *yaml.Node }

func indexNodes(root *yaml.Node) nodeIndex { return nodeIndex{root} }

var noNode = &yaml.Node{}

func (x nodeIndex) device(i int) *yaml.Node {
	devs := valueOf(x.root, "devices")
	if devs == nil || i >= len(devs.Content) || devs.Content[i] == nil {
		return noNode
	}
	return devs.Content[i]
}

func (x nodeIndex) tag(i, j int) *yaml.Node {
	tags := valueOf(x.device(i), "tags")
	if tags != nil && tags.Kind == yaml.AliasNode {
		tags = tags.Alias // tags: *common
	}
	if tags == nil || j >= len(tags.Content) {
		return noNode
	}
	return tags.Content[j]
}

// keyLine is the line of key inside mapping m, or the mapping's own line.
func keyLine(m *yaml.Node, key string) int {
	if m != nil && m.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value == key {
				return m.Content[i].Line
			}
		}
	}
	if m == nil {
		return 0
	}
	return m.Line
}

// section is the node of a top-level section ("buffer", "uplink", ...).
func (x nodeIndex) section(name string) *yaml.Node {
	if v := valueOf(x.root, name); v != nil {
		return v
	}
	return &yaml.Node{Line: keyLine(x.root, name)}
}
