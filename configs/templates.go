package configs

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// templateSet is the templates: section by name: each a device without an
// address, whose settings and tags devices naming it take. Thirty identical
// presses are then thirty short entries.
type templateSet struct {
	byName map[string]*yaml.Node
	names  []string
}

// templatesOf indexes root's templates: list.
func templatesOf(root *yaml.Node, problems *[]Problem) templateSet {
	ts := templateSet{byName: map[string]*yaml.Node{}}
	list := valueOf(root, "templates")
	if list == nil || list.Kind != yaml.SequenceNode {
		return ts // absent, or a type error the decoder reports
	}
	for _, t := range list.Content {
		if t.Kind != yaml.MappingNode {
			continue
		}
		name := scalarOf(t, "name", "")
		switch {
		case name == "":
			*problems = append(*problems, Problem{t.Line, "templates: a template needs a name"})
			continue
		case ts.byName[name] != nil:
			*problems = append(*problems, Problem{keyLine(t, "name"), fmt.Sprintf("template %s: duplicate template name (first at line %d)", name, ts.byName[name].Line)})
			continue
		case valueOf(t, "template") != nil:
			*problems = append(*problems, Problem{keyLine(t, "template"), fmt.Sprintf("template %s: a template cannot name a template", name)})
		}
		ts.byName[name] = t
		ts.names = append(ts.names, name)
	}
	return ts
}

// expand gives dev (a device's mapping node) what its template has: every
// key it does not set itself, and the template's tags, in the template's
// order, with the keys the device's tag of the same name sets replaced
// (tags: [{name: temperature, address: 2}] moves one tag); the device's
// other tags come after. Nodes are copied: a device's tree is released
// once it is decoded, the template's is needed again.
func (ts templateSet) expand(dev *yaml.Node, problems *[]Problem) {
	if dev.Kind != yaml.MappingNode {
		return
	}
	ref := valueOf(dev, "template")
	if ref == nil || ref.Kind != yaml.ScalarNode || ref.Value == "" {
		return
	}
	t := ts.byName[ref.Value]
	if t == nil {
		known := "none are defined"
		if len(ts.names) > 0 {
			known = "templates: " + strings.Join(ts.names, ", ")
		}
		*problems = append(*problems, Problem{ref.Line, fmt.Sprintf("device %s: template %q is not defined (%s)", scalarOf(dev, "name", "#?"), ref.Value, known)})
		return
	}
	for i := 0; i+1 < len(t.Content); i += 2 {
		k, v := t.Content[i], t.Content[i+1]
		switch k.Value {
		case "name", "template":
			continue
		case "tags":
			if own := valueOf(dev, "tags"); own != nil {
				mergeTags(own, v)
				continue
			}
		}
		if valueOf(dev, k.Value) == nil {
			dev.Content = append(dev.Content, copyNode(k), copyNode(v))
		}
	}
}

// mergeTags puts the template's tags (tmpl) before the device's own (own),
// a device tag of a template tag's name merged into it key by key.
func mergeTags(own, tmpl *yaml.Node) {
	if own.Kind == yaml.AliasNode && own.Alias != nil {
		own = own.Alias
	}
	if tmpl.Kind == yaml.AliasNode && tmpl.Alias != nil {
		tmpl = tmpl.Alias
	}
	if own.Kind != yaml.SequenceNode || tmpl.Kind != yaml.SequenceNode {
		return // the decoder reports what is not a list
	}
	mine := map[string]*yaml.Node{}
	for _, tag := range own.Content {
		if n := scalarOf(tag, "name", ""); n != "" && tag.Kind == yaml.MappingNode {
			mine[n] = tag
		}
	}
	merged := make([]*yaml.Node, 0, len(tmpl.Content)+len(own.Content))
	used := map[*yaml.Node]bool{}
	for _, tag := range tmpl.Content {
		c := copyNode(tag)
		if o := mine[scalarOf(tag, "name", "")]; o != nil && c.Kind == yaml.MappingNode {
			used[o] = true
			for i := 0; i+1 < len(o.Content); i += 2 {
				setKey(c, o.Content[i], o.Content[i+1])
			}
			c.Line = o.Line // problems point at the device's entry
		}
		merged = append(merged, c)
	}
	for _, tag := range own.Content {
		if !used[tag] {
			merged = append(merged, tag)
		}
	}
	own.Content = merged
}

// setKey sets key k of mapping m to v, replacing an existing value.
func setKey(m, k, v *yaml.Node) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == k.Value {
			m.Content[i+1] = v
			return
		}
	}
	m.Content = append(m.Content, k, v)
}

// copyNode copies n deeply; an alias stays pointing at its anchor.
func copyNode(n *yaml.Node) *yaml.Node {
	c := *n
	if n.Kind != yaml.AliasNode {
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, ch := range n.Content {
			c.Content[i] = copyNode(ch)
		}
	}
	return &c
}
