package configs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// valueError is how a custom UnmarshalYAML reports a bad value: as a YAML
// type error, so that the decoder goes on and every bad value of the file
// is reported at once, not only the first.
func valueError(n *yaml.Node, format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: ", n.Line) + fmt.Sprintf(format, args...)}}
}

var cannotUnmarshal = regexp.MustCompile("^cannot unmarshal !!\\w+ `(.*)` into (.+)$")

// wantKind says in words what a Go type the decoder wanted holds.
var wantKind = map[string]string{
	"int": "a whole number", "int8": "a whole number", "int16": "a whole number", "int32": "a whole number", "int64": "a whole number",
	"uint": "a whole number ≥ 0", "uint8": "a whole number 0..255", "uint16": "a whole number 0..65535", "uint32": "a whole number ≥ 0", "uint64": "a whole number ≥ 0",
	"float32": "a number", "float64": "a number", "bool": "true or false", "string": "a text",
}

// typeProblems turns the decoder's type errors ("line 8: cannot unmarshal
// !!str `one` into int") into problems that name the device, the tag and
// the key, found in n (a device or the whole file) by line and value:
// `device press01: unit_id "one" is not a whole number`.
func typeProblems(n *yaml.Node, errs []string) []Problem {
	out := make([]Problem, 0, len(errs))
	for _, e := range errs {
		e = strings.TrimSpace(e)
		m := yamlLine.FindStringSubmatch(e)
		if m == nil {
			out = append(out, Problem{Msg: strings.TrimPrefix(e, "yaml: ")})
			continue
		}
		line, _ := strconv.Atoi(m[1])
		msg := m[2]
		where, key := locate(n, line, msg)
		if c := cannotUnmarshal.FindStringSubmatch(msg); c != nil && key != "" {
			if kind, ok := wantKind[c[2]]; ok {
				msg = fmt.Sprintf("%s %q is not %s", key, c[1], kind)
			} else {
				msg = key + ": " + msg
			}
		} else if key != "" && !strings.HasPrefix(msg, key) {
			msg = key + ": " + msg
		}
		out = append(out, Problem{Line: line, Msg: prefix(where) + msg})
	}
	return out
}

// locate finds the key whose value is at line (of several on one line, the
// one whose value msg quotes or that msg begins with, then the deepest), and the device and tag it
// is in. n is the whole file or one device.
func locate(n *yaml.Node, line int, msg string) (where, key string) {
	quoted := ""
	if c := cannotUnmarshal.FindStringSubmatch(msg); c != nil {
		quoted = c[1]
	}
	bestDepth, bestQuoted := -1, false
	var walk func(n *yaml.Node, at, ctx string, depth int)
	walk = func(n *yaml.Node, at, ctx string, depth int) {
		switch n.Kind {
		case yaml.SequenceNode:
			for _, c := range n.Content {
				w := at
				switch ctx {
				case "devices":
					w = "device " + scalarOf(c, "name", "#?")
				case "templates":
					w = "template " + scalarOf(c, "name", "#?")
				case "tags":
					w = at + ", tag " + scalarOf(c, "name", "#?")
				}
				walk(c, w, "", depth+1)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if v.Line == line {
					q := quoted != "" && v.Kind == yaml.ScalarNode && v.Value == quoted || strings.HasPrefix(msg, k.Value+" ")
					if q && !bestQuoted || q == bestQuoted && depth > bestDepth {
						where, key = at, k.Value
						bestDepth, bestQuoted = depth, q
					}
				}
				sub := at
				if depth == 0 && at == "" && k.Value != "devices" && k.Value != "templates" {
					sub = k.Value // a section: "uplink: max_inflight ..."
				}
				walk(v, sub, k.Value, depth+1)
			}
		}
	}
	at := ""
	if n.Kind == yaml.MappingNode && valueOf(n, "devices") == nil && valueOf(n, "driver") != nil {
		at = "device " + scalarOf(n, "name", "#?") // a device decoded on its own
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	walk(n, at, "", 0)
	return where, key
}

// syntaxLine corrects the line of a YAML syntax error about indentation.
// The parser reports where the enclosing block began ("did not find
// expected key" at the line above the stray one, or at "tags:" four lines
// up); the line a person must fix is the first whose indentation matches
// no open block. Other errors keep their line.
func syntaxLine(data []byte, line int, msg string) (int, string) {
	if !strings.Contains(msg, "did not find expected") {
		return line, msg
	}
	type level struct {
		indent int
		seq    bool // a "- " list: only "- " lines may sit at this indent
	}
	stack := []level{{indent: 0}}
	inBlock := -1 // indentation of a block scalar (| or >) being skipped
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		text := strings.TrimRight(raw, " \t\r")
		body := strings.TrimLeft(text, " ")
		if body == "" || body[0] == '#' {
			continue
		}
		indent := len(text) - len(body)
		if inBlock >= 0 {
			if indent > inBlock {
				continue
			}
			inBlock = -1
		}
		dash := strings.HasPrefix(body, "- ") || body == "-"
		popped := false
		for len(stack) > 1 && stack[len(stack)-1].indent > indent {
			stack = stack[:len(stack)-1]
			popped = true
		}
		top := stack[len(stack)-1]
		switch {
		case indent > top.indent && popped: // between two open blocks
			if n >= line {
				return n, "the indentation of this line matches no line above (" + msg + ")"
			}
		case indent > top.indent:
			stack = append(stack, level{indent: indent, seq: dash})
		case indent < top.indent || top.seq && !dash:
			if n >= line {
				return n, "the indentation of this line matches no line above (" + msg + ")"
			}
		case dash && !top.seq:
			stack[len(stack)-1].seq = true
		}
		if dash {
			// the item's own keys sit after "- "
			item := strings.TrimLeft(body, "- ")
			stack = append(stack, level{indent: indent + len(body) - len(item)})
		}
		if strings.HasSuffix(body, "|") || strings.HasSuffix(body, ">") || strings.HasSuffix(body, "|-") || strings.HasSuffix(body, ">-") {
			inBlock = indent
		}
	}
	return line, msg
}

// syntaxError is yamlError with the line of an indentation error corrected.
func syntaxError(file string, data []byte, err error) error {
	e, ok := yamlError(file, err).(*Error)
	if ok && len(e.Problems) == 1 && e.Problems[0].Line > 0 {
		p := &e.Problems[0]
		p.Line, p.Msg = syntaxLine(data, p.Line, p.Msg)
	}
	return e
}
